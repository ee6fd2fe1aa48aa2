// Small progressive enhancements; every page works without this file.

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

// Forms that do something hard to undo ask first.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
