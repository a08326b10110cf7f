//! Tests of `download.rs`: names, tokens, URLs and the downloader against a local server.

use super::*;

#[test]
fn tokens_stay_on_their_hosts() {
    let tokens = vec![
        Token { value: "hf".into(), hosts: vec!["huggingface.co".into(), "hf.co".into()] },
        Token { value: "cv".into(), hosts: vec!["civitai.com".into()] },
    ];
    let hf = "https://huggingface.co/a/b/resolve/main/x.safetensors";
    assert_eq!(token_for(&tokens, hf, "huggingface.co"), Some("hf"));
    // A redirect to the CDN (another host): no token, even a Hugging Face one.
    assert_eq!(token_for(&tokens, "https://cdn-lfs.huggingface.co/x", "huggingface.co"), None);
    // A redirect from Civitai to Hugging Face: not Civitai's token, and not Hugging Face's
    // either (the request did not start there).
    assert_eq!(token_for(&tokens, hf, "civitai.com"), None);
    assert_eq!(token_for(&tokens, "https://civitai.com/api/download/models/1", "civitai.com"), Some("cv"));
    assert_eq!(token_for(&tokens, "https://evil.example/civitai.com", "evil.example"), None);
    assert_eq!(token_for(&tokens, "https://civitai.com.evil.example/", "civitai.com.evil.example"), None);
    assert_eq!(host_of("http://127.0.0.1:8000/x"), Some("127.0.0.1:8000".into()));
    assert_eq!(host_of("https://HuggingFace.co:443/x"), Some("huggingface.co".into()));
}

#[test]
fn redirects_resolve_and_names_are_safe() {
    assert_eq!(resolve("https://a.example/x/y?q", "/z"), "https://a.example/z");
    assert_eq!(resolve("https://a.example/x/y?q", "z"), "https://a.example/x/z");
    assert_eq!(resolve("https://a.example/x", "//b.example/z"), "https://b.example/z");
    assert_eq!(resolve("https://a.example/x", "http://c.example/"), "http://c.example/");
    assert_eq!(
        disposition_filename("attachment; filename=\"model.safetensors\"").as_deref(),
        Some("model.safetensors")
    );
    assert_eq!(
        disposition_filename("attachment; filename=\"a.bin\"; filename*=UTF-8''caf%C3%A9.bin").as_deref(),
        Some("café.bin")
    );
    for bad in ["../x", "a/b", "..", "", "a\\b", "x\ny"] {
        assert_eq!(safe_filename(bad), None, "{bad:?}");
    }
    assert_eq!(url_filename("https://h/x/model.ckpt?download=true").as_deref(), Some("model.ckpt"));
}

#[test]
fn the_limiter_holds_the_rate() {
    let l = Limiter::new(2_000_000);
    let t = Instant::now();
    let mut got = 0;
    while got < 1_000_000 {
        got += l.take(256 * 1024);
    }
    let secs = t.elapsed().as_secs_f64();
    assert!(secs > 0.3 && secs < 1.0, "1 MB at 2 MB/s took {secs} s");
}
