//! Routes declared once. Registering a route in a [`RouteSet`] gives the router its handler and
//! records its method, path and whether it is public; `gpubox routes`, the all-routes auth test
//! and the gateway read that record. Public routes are kept apart from the rest, so the gateway
//! puts the login guard around everything else by construction rather than by matching paths.

use axum::handler::Handler;
use axum::routing::MethodRouter;
use axum::Router;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Static where the routes are declared; owned where `gpubox routes` reads them back.
type Text = Cow<'static, str>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteSpec {
    /// `GET`, `POST`, or `ANY`.
    pub method: Text,
    /// As axum writes it: `/.gpubox/login`, `/.gpubox/assets/{file}`, `/{*path}`.
    pub path: Text,
    /// A concrete path that reaches this route, for tests.
    pub example: Text,
    /// Answers without credentials.
    pub public: bool,
    /// Also accepts a WebSocket upgrade.
    pub websocket: bool,
    /// Whose route it is: `gpubox` (the reserved prefix), `proxy`, or an app's name.
    pub owner: Text,
}

/// The routes of one listener, as `gpubox routes` reports them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteRoutes {
    pub service: String,
    pub port: u16,
    pub routes: Vec<RouteSpec>,
}

/// Routes being declared, over the state `S` their handlers take.
pub struct RouteSet<S> {
    owner: &'static str,
    specs: Vec<RouteSpec>,
    private: Router<S>,
    public: Vec<(&'static str, MethodRouter<S>)>,
}

/// A [`RouteSet`] given its state: what the gateway mounts.
#[derive(Clone)]
pub struct Routed {
    pub specs: Vec<RouteSpec>,
    /// Every route that needs a login.
    pub private: Router,
    /// The public routes, one method router per path, not yet behind anything.
    pub public: Vec<(&'static str, MethodRouter)>,
}

macro_rules! methods {
    ($($name:ident $method:literal $make:path;)*) => {
        $(
            #[doc = concat!("A `", $method, "` route that needs a login.")]
            pub fn $name<H, T>(self, path: &'static str, example: &'static str, handler: H) -> Self
            where
                H: Handler<T, S>,
                T: 'static,
            {
                self.add($method, path, example, false, false, $make(handler))
            }
        )*
    };
}

impl<S: Clone + Send + Sync + 'static> RouteSet<S> {
    pub fn new(owner: &'static str) -> Self {
        RouteSet { owner, specs: Vec::new(), private: Router::new(), public: Vec::new() }
    }

    methods! {
        get "GET" axum::routing::get;
        post "POST" axum::routing::post;
        put "PUT" axum::routing::put;
        patch "PATCH" axum::routing::patch;
        delete "DELETE" axum::routing::delete;
        any "ANY" axum::routing::any;
    }

    /// A `GET` route that also takes a WebSocket upgrade.
    pub fn websocket<H, T>(self, path: &'static str, example: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("GET", path, example, false, true, axum::routing::get(handler))
    }

    /// A `GET` route that answers without a login.
    pub fn public_get<H, T>(self, path: &'static str, example: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("GET", path, example, true, false, axum::routing::get(handler))
    }

    /// A `POST` route that answers without a login.
    pub fn public_post<H, T>(self, path: &'static str, example: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("POST", path, example, true, false, axum::routing::post(handler))
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        example: &'static str,
        public: bool,
        websocket: bool,
        handler: MethodRouter<S>,
    ) -> Self {
        self.specs.push(RouteSpec {
            method: method.into(),
            path: path.into(),
            example: example.into(),
            public,
            websocket,
            owner: self.owner.into(),
        });
        if public {
            match self.public.iter_mut().find(|(p, _)| *p == path) {
                Some((_, methods)) => *methods = std::mem::take(methods).merge(handler),
                None => self.public.push((path, handler)),
            }
        } else {
            self.private = self.private.route(path, handler);
        }
        self
    }

    /// What was declared, before the state is given.
    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    pub fn with_state(self, state: S) -> Routed {
        Routed {
            specs: self.specs,
            private: self.private.with_state(state.clone()),
            public: self.public.into_iter().map(|(path, m)| (path, m.with_state(state.clone()))).collect(),
        }
    }
}

impl Routed {
    /// Adds another set's routes (an app's beside gpubox's own).
    pub fn merge(mut self, other: Routed) -> Routed {
        self.specs.extend(other.specs);
        self.private = self.private.merge(other.private);
        self.public.extend(other.public);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower_service::Service;

    async fn status(router: &Router, method: &str, path: &str) -> StatusCode {
        let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        router.clone().call(req).await.unwrap().status()
    }

    /// The shape the gateway builds: a guard around the private routes, the public ones added
    /// after it. A route is public only where it was declared so.
    #[tokio::test]
    async fn only_routes_declared_public_skip_the_guard() {
        let set = RouteSet::<()>::new("test")
            .public_get("/open", "/open", || async { "open" })
            .public_post("/open", "/open", || async { "posted" })
            .get("/closed", "/closed", || async { "closed" })
            .any("/closed/{*rest}", "/closed/x", || async { "closed too" })
            .with_state(());
        let specs: Vec<_> = set.specs.iter().map(|s| (s.method.as_ref(), s.path.as_ref(), s.public)).collect();
        assert_eq!(
            specs,
            [
                ("GET", "/open", true),
                ("POST", "/open", true),
                ("GET", "/closed", false),
                ("ANY", "/closed/{*rest}", false)
            ]
        );
        let guard = axum::middleware::from_fn(|_req: axum::extract::Request, _next: axum::middleware::Next| async {
            StatusCode::UNAUTHORIZED
        });
        let mut router = set.private.fallback(|| async { StatusCode::NOT_FOUND }).layer(guard.clone());
        let refused = Router::new().fallback(|| async { StatusCode::METHOD_NOT_ALLOWED }).layer(guard);
        for (path, methods) in set.public {
            router = router.route(path, methods.fallback_service(refused.clone()));
        }
        assert_eq!(status(&router, "GET", "/open").await, StatusCode::OK);
        assert_eq!(status(&router, "POST", "/open").await, StatusCode::OK);
        assert_eq!(status(&router, "PUT", "/open").await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&router, "GET", "/closed").await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&router, "GET", "/closed/a/b").await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&router, "GET", "/elsewhere").await, StatusCode::UNAUTHORIZED);
    }
}
