// The dashboard works without this: it only says that a long action (verifying the trail) runs.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button && button.dataset.busy) {
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = button.dataset.busy;
    event.target.after(note);
  }
});
