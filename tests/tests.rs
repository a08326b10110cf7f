//! Integration tests: the real `gpubox` binary, its control socket and real child processes.

mod http;
mod util;

mod attack;
mod clients;
mod config;
mod connections;
mod control;
mod descendants;
mod files;
mod files_dav;
mod files_jobs;
mod files_links;
mod files_models;
mod files_pictures;
mod files_shares;
mod files_transfer;
mod gateway;
mod hosts;
mod idle_stop;
mod layers;
mod login;
mod logs;
mod logs_app;
mod monitor;
mod pid1;
mod provision;
mod proxy;
mod reload;
mod shutdown;
mod supervisor;
mod terminal;
mod tls;
mod tunnels;
