//! The opt-in idle stop through the real binary, against local stand-ins of Vast's and RunPod's
//! APIs (tests/fixtures/receiver.py): Vast's exact request after a warning, no stop while anything
//! is in use (a busy or unreadable GPU, requests) while the pages' own refreshes are no use,
//! "Keep running", a refused stop, RunPod's request, and never a stop without the opt-in.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::monitor::{body, events, fake_smi, path_with, start, Receiver, T};
use crate::util::wait_for;

/// Idle-stop configuration: stop after `after`, warn `warn` before.
fn idle(r: &Receiver, after: &str, warn: &str) -> String {
    format!("[alerts]\nwebhook = \"{}\"\ngpu_idle = \"off\"\n\n[idle_stop]\nafter = \"{after}\"\nwarn_before = \"{warn}\"\n", r.url("/ok/hook"))
}

fn vast_env(r: &Receiver, id: &str) -> Vec<String> {
    vec![format!("CONTAINER_ID={id}"), "CONTAINER_API_KEY=vast-secret".into(), format!("GPUBOX_VAST_URL={}", r.url(""))]
}

#[test]
fn an_idle_instance_is_stopped_with_vasts_exact_request_after_a_warning() {
    let r = Receiver::start();
    let env = vast_env(&r, "4242");
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let m = start(&env, &idle(&r, "5s", "3s"));
    let stop = r.wait("/api/v0/instances/", "the stop request", |v| !v.is_empty());
    assert_eq!(stop.len(), 1);
    let s = &stop[0];
    assert_eq!(s["method"], "PUT");
    assert_eq!(s["path"], "/api/v0/instances/4242/");
    assert_eq!(s["headers"]["authorization"], "Bearer vast-secret");
    assert_eq!(s["headers"]["content-type"], "application/json");
    assert_eq!(body(s), serde_json::json!({"state": "stopped"}));
    let hook = r.wait("/ok/hook", "the warning and the stop's alert", |v| events(v).contains(&"idle_stop".to_string()));
    let ev = events(&hook);
    let warn = ev.iter().position(|e| e == "idle_warning").expect("a warning first");
    assert!(warn < ev.iter().position(|e| e == "idle_stop").unwrap(), "{ev:?}");
    // Told before the request: once the cloud stops the container nothing more can be sent.
    let all = r.requests();
    let told = all.iter().position(|q| q["path"] == "/ok/hook" && body(q)["event"] == "idle_stop").unwrap();
    let asked = all.iter().position(|q| q["method"] == "PUT").unwrap();
    assert!(told < asked, "the alert came after the request");
    assert!(body(&all[told])["title"].as_str().unwrap().contains("asking Vast.ai to stop"));
    let st = m.json("/.gpubox/api/idle");
    assert_eq!(st["phase"], "stopped", "{st}");
    assert_eq!(st["provider"], "Vast.ai");
    assert!(st["last_result"].as_str().unwrap().contains("accepted"), "{st}");
}

#[test]
fn no_stop_while_someone_uses_it_and_pages_refreshing_themselves_are_not_someone() {
    let r = Receiver::start();
    let d = tempfile::tempdir().unwrap();
    // A busy GPU is activity.
    let bin = fake_smi(d.path(), "0, NVIDIA H100 80GB HBM3, 60, 4000, 81559, 51, 300.5\n", false);
    let path = path_with(&bin);
    let mut env = vast_env(&r, "77");
    env.push(path);
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let m = start(&env, &idle(&r, "5s", "2s"));
    std::thread::sleep(Duration::from_secs(7));
    assert!(r.to("/api/v0/").is_empty(), "stopped while the GPU was busy");
    assert!(m.json("/.gpubox/api/idle")["busy"][0].as_str().unwrap().contains("GPU 0"));
    // The GPU goes quiet, but someone makes requests: still no stop.
    std::fs::write(d.path().join("smi.out"), "0, NVIDIA H100 80GB HBM3, 0, 4000, 81559, 40, 60.1\n").unwrap();
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert_eq!(m.get("/api/status", false).status, 200);
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(r.to("/api/v0/").is_empty(), "stopped while requests came");
    assert!(!events(&r.to("/ok/hook")).contains(&"idle_warning".to_string()), "warned while requests came");
    // Only a page's own refreshes now: they are not activity, and the stop comes.
    let until = Instant::now() + Duration::from_secs(15);
    // (The header, or for EventSource and WebSocket, which cannot send one, the query.)
    let mut n = 0;
    while r.to("/api/v0/").is_empty() && Instant::now() < until {
        n += 1;
        let r = if n % 2 == 0 { m.get("/api/status", true) } else { m.get("/api/status?gpubox_background=1", false) };
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(r.to("/api/v0/instances/77/").len(), 1, "the stop came while only background requests did");
}

#[test]
fn keep_running_starts_the_count_again() {
    let r = Receiver::start();
    let env = vast_env(&r, "9");
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let m = start(&env, &idle(&r, "8s", "5s"));
    wait_for(|| m.json("/.gpubox/api/idle")["phase"] == "warned", T, "the warning");
    let st = m.json("/.gpubox/api/idle");
    assert!(st["stop_at_ms"].as_u64().is_some(), "{st}");
    let kept = m.post("/.gpubox/api/idle/keep");
    assert_eq!(kept.status, 200, "{}", kept.text());
    let after: Value = serde_json::from_slice(&kept.body).unwrap();
    assert_eq!(after["phase"], "watching");
    let pressed = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    assert!(r.to("/api/v0/").is_empty(), "stopped although kept running");
    r.wait("/api/v0/instances/9/", "the stop after a new idle spell", |v| !v.is_empty());
    assert!(pressed.elapsed() >= Duration::from_secs(7), "the count started again: {:?}", pressed.elapsed());
}

#[test]
fn a_refused_stop_is_reported_and_runpod_gets_its_own_request() {
    let r = Receiver::start();
    let env = vast_env(&r, "refuse");
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let m = start(&env, &idle(&r, "4s", "2s"));
    let failed = |h: &Value| body(h)["event"] == "idle_stop" && body(h)["level"] == "error";
    let hook = r.wait("/ok/hook", "the failure's alert", |v| v.iter().any(failed));
    let a = body(hook.iter().find(|h| failed(h)).unwrap());
    assert!(a["message"].as_str().unwrap().contains("this instance is not yours"), "{a}");
    let st = m.json("/.gpubox/api/idle");
    assert_eq!(st["phase"], "failed", "{st}");
    drop(m);

    let runpod = format!("GPUBOX_RUNPOD_URL={}", r.url("/v1"));
    let _m = start(&["RUNPOD_POD_ID=pod-1", "RUNPOD_API_KEY=rp-secret", &runpod], &idle(&r, "4s", "2s"));
    let stop = r.wait("/v1/pods/", "RunPod's stop", |v| !v.is_empty());
    assert_eq!(stop[0]["method"], "POST");
    assert_eq!(stop[0]["path"], "/v1/pods/pod-1/stop");
    assert_eq!(stop[0]["headers"]["authorization"], "Bearer rp-secret");
}

#[test]
fn never_a_stop_without_the_opt_in() {
    let r = Receiver::start();
    let env = vast_env(&r, "1");
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let m = start(&env, &format!("[alerts]\nwebhook = \"{}\"\n", r.url("/ok/hook")));
    let st = m.json("/.gpubox/api/idle");
    assert_eq!((st["enabled"].as_bool(), st["phase"].as_str()), (Some(false), Some("off")));
    std::thread::sleep(Duration::from_secs(8));
    assert!(r.to("/api/v0/").is_empty());
    assert!(!events(&r.to("/ok/hook")).iter().any(|e| e.starts_with("idle")));
    // Without a key it warns and says it cannot stop, and asks nobody.
    drop(m);
    let _m = start(&[], &idle(&r, "4s", "2s"));
    let hook = r.wait("/ok/hook", "the can't-stop alert", |v| events(v).contains(&"idle_stop".to_string()));
    let a = body(hook.iter().rev().find(|h| body(h)["event"] == "idle_stop").unwrap());
    assert!(a["message"].as_str().unwrap().contains("CONTAINER_API_KEY"), "{a}");
    assert!(r.to("/api/v0/").is_empty());
}

#[test]
fn a_gpu_that_cannot_be_read_is_not_taken_for_an_idle_one() {
    // nvidia-smi is there but fails: the GPU may be training unseen, so no stop.
    let r = Receiver::start();
    let d = tempfile::tempdir().unwrap();
    let bin = fake_smi(d.path(), "", false);
    std::fs::write(bin.join("nvidia-smi"), "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n").unwrap();
    let path = path_with(&bin);
    let mut env = vast_env(&r, "5");
    env.push(path);
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let m = start(&env, &idle(&r, "4s", "2s"));
    std::thread::sleep(Duration::from_secs(8));
    assert!(r.to("/api/v0/").is_empty(), "stopped although the GPU could not be read");
    let st = m.json("/.gpubox/api/idle");
    assert!(st["busy"].as_array().unwrap().iter().any(|b| b == "GPU usage cannot be read"), "{st}");
}
