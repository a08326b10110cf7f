// The page shell's own script, on pages that show the default-login warning: "Hide" hides it
// for the browser's session, on every port (a session cookie, which the server reads to leave
// the warning out of the next pages).
const banner = document.querySelector<HTMLElement>(".banner");
document.getElementById("banner-hide")?.addEventListener("click", () => {
  document.cookie = "gpubox_banner=hidden; path=/; SameSite=Lax";
  if (banner) banner.hidden = true;
});
