-- Skeletons are now case-folded after the UTS #39 mapping (so `0wner@` meets
-- `owner@`): forget the old ones; every instance makes them anew at start
-- (crates/store/src/users.rs, fill_email_skeletons).
UPDATE users SET email_skeleton = NULL;
