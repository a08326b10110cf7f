//! A blocking client for the control socket: the CLI verbs need nothing more.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::protocol::{Pong, Request};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("gpubox is not running (no answer on its control socket {}: {reason}); start it with `gpubox run`, or point --control / GPUBOX_CONTROL at the right socket", path.display())]
    NotRunning { path: PathBuf, reason: String },
    #[error("lost the connection to gpubox: {0}")]
    Io(#[from] io::Error),
    #[error("gpubox sent an answer this client does not understand: {0}")]
    BadAnswer(String),
    #[error("{message}")]
    Refused { code: String, message: String },
}

pub struct Client {
    reader: BufReader<UnixStream>,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)
            .map_err(|e| ClientError::NotRunning { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(Client { reader: BufReader::new(stream) })
    }

    /// Sends a request; answers are read with [`Client::answer`].
    pub fn send(&mut self, req: &Request) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(req).expect("requests serialize");
        line.push(b'\n');
        self.reader.get_mut().write_all(&line)?;
        Ok(())
    }

    pub fn set_timeout(&self, t: Option<Duration>) {
        let _ = self.reader.get_ref().set_read_timeout(t);
    }

    /// The next answer, or `None` when gpubox closed the connection. An error answer becomes
    /// [`ClientError::Refused`].
    pub fn answer(&mut self) -> Result<Option<Value>, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&line).map_err(|_| ClientError::BadAnswer(line.trim().to_string()))?;
        if let Some(e) = v.get("error") {
            return Err(ClientError::Refused {
                code: e["code"].as_str().unwrap_or("error").to_string(),
                message: e["message"].as_str().unwrap_or("unknown error").to_string(),
            });
        }
        Ok(Some(v))
    }

    /// The next answer as the type the protocol gives it (`protocol::StatusAnswer`, …).
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ClientError> {
        match self.answer()? {
            None => Ok(None),
            // Read from the value in place: a followed log is one message per line.
            Some(v) => T::deserialize(&v).map(Some).map_err(|e| ClientError::BadAnswer(format!("{e}: {v}"))),
        }
    }

    /// One request, one answer (as JSON, for callers that pass it on).
    pub fn call(path: &Path, req: &Request) -> Result<Value, ClientError> {
        let mut c = Client::connect(path)?;
        c.send(req)?;
        c.answer()?.ok_or_else(closed)
    }

    /// One request, one typed answer.
    pub fn ask<T: DeserializeOwned>(path: &Path, req: &Request) -> Result<T, ClientError> {
        let mut c = Client::connect(path)?;
        c.send(req)?;
        c.read()?.ok_or_else(closed)
    }
}

fn closed() -> ClientError {
    ClientError::BadAnswer("the connection closed without an answer".into())
}

/// The pid of the gpubox answering on `path`, if one does.
pub fn running_pid(path: &Path) -> Option<i64> {
    let mut c = Client::connect(path).ok()?;
    c.set_timeout(Some(Duration::from_secs(2)));
    c.send(&Request::Ping).ok()?;
    c.read::<Pong>().ok()?.map(|p| p.pid as i64)
}
