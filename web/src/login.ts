// The login page: a deep link's #fragment (`/#/outputs`) never reaches the server, but browsers
// keep it across the redirect to this page. Put it on the form's action: the answer's redirect
// then inherits it (a Location without a fragment takes the request's), and the user lands where
// the link pointed.

const form = document.querySelector<HTMLFormElement>("form#login");
if (form && window.location.hash.length > 1) {
  form.action = `/.gpubox/login${window.location.hash}`;
}
