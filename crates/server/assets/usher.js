// Small progressive enhancements; every page works without this file.

document.documentElement.classList.add("js");

// On a phone the navigation folds behind the Menu button.
const menuButton = document.querySelector(".menu-button");
const siteNav = document.getElementById("site-nav");
if (menuButton && siteNav) {
  menuButton.hidden = false;
  menuButton.addEventListener("click", () => {
    const open = siteNav.classList.toggle("open");
    menuButton.setAttribute("aria-expanded", String(open));
  });
}

// Links marked data-dialog open that <dialog> instead of leading to the
// page with the same form (which is where they lead without script).
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-dialog]");
  if (!opener) return;
  const dialog = document.getElementById(opener.dataset.dialog);
  if (!dialog || typeof dialog.showModal !== "function") return;
  event.preventDefault();
  dialog.showModal();
  const first = dialog.querySelector("input, select, textarea, button");
  if (first) first.focus();
});
document.addEventListener("click", (event) => {
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) closer.closest("dialog").close();
});

// After a form post answered with a page, show the page's own address, so
// that reloading does not post (and invite, or reset) again.
const settleAt = document.body.dataset.settleAt;
if (settleAt) history.replaceState(null, "", settleAt);

// Copy buttons: the Clipboard API where the browser offers it (https and
// localhost), else the older select-and-copy, which works on plain http too.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.value || source.textContent;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  const fallback = () => {
    source.select();
    if (document.execCommand("copy")) done();
  };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});

// Forms that do something hard to undo ask first. Without script the
// server asks instead, on a page of its own; with it, the answer goes along
// as confirmed=yes so that the server does not ask again.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset && form.dataset.confirm;
  if (!question) return;
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  if (!form.querySelector("input[name=confirmed]")) {
    const yes = document.createElement("input");
    yes.type = "hidden";
    yes.name = "confirmed";
    yes.value = "yes";
    form.appendChild(yes);
  }
});

// ---- users pages (issue 15): each works without this block ----------------

// A select marked data-autosubmit sends its form when changed (the role of a
// row, the list's filters); its Save button is then not needed.
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  const form = select.form;
  if (!form) return;
  form.querySelectorAll(".autosubmit-save").forEach((b) => { b.hidden = true; });
  select.addEventListener("change", () => form.requestSubmit());
});

// Buttons that post a shared form (form="row-action") ask first when they
// carry data-confirm; the server asks instead without script.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset && button.dataset.confirm;
  if (!question || (event.target.dataset && event.target.dataset.confirm)) return;
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  const form = event.target;
  if (!form.querySelector("input[name=confirmed]")) {
    const yes = document.createElement("input");
    yes.type = "hidden";
    yes.name = "confirmed";
    yes.value = "yes";
    form.appendChild(yes);
  }
});

// The "…" menus: one open at a time, closed by Escape or a click elsewhere.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.row-menu[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.open = false;
  });
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll("details.row-menu[open]").forEach((menu) => {
    menu.open = false;
    menu.querySelector("summary").focus();
  });
});

// The transfer field searches people as one types: its datalist is filled
// from the same search the list uses (a few matches, never everyone).
document.querySelectorAll("form[data-people]").forEach((form) => {
  const input = form.querySelector("input[list]");
  const list = input && document.getElementById(input.getAttribute("list"));
  if (!list) return;
  const fixed = Array.from(list.options).map((o) => o.cloneNode(true));
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (text.length < 2) return;
    timer = setTimeout(async () => {
      const url = form.dataset.people + "?q=" + encodeURIComponent(text);
      const answer = await fetch(url, { credentials: "same-origin" });
      if (!answer.ok) return;
      const people = await answer.json();
      list.replaceChildren(...fixed.map((o) => o.cloneNode(true)));
      for (const person of people) {
        const option = document.createElement("option");
        option.value = person.value;
        option.textContent = person.label;
        list.appendChild(option);
      }
    }, 150);
  });
});
