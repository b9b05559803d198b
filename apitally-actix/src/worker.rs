//! For the middleware's state in one worker, see [`Worker`].

use std::{
    cell::{Cell, OnceCell, RefCell},
    rc::Rc,
    sync::Arc,
};

use actix_web::{
    dev::{ResourceMap, ServiceRequest},
    HttpRequest,
};
use hashbrown::{HashMap, HashSet};
use slab::Slab;

use apitally_core::adapter::normalize_route;

use crate::{record::Streaming, shared::Shared};

/// The middleware's state in one worker (one `App` instance). Nothing in it refers to a
/// request once that request has ended.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) routes: Routes,
    paths: Paths,
    /// A copy of the app's resource map (route patterns; nothing of any request), for the
    /// route of a request that ended without a response.
    rmap: OnceCell<ResourceMap>,
    /// Records of responses whose body is still streaming, until the body ends or is dropped.
    pub(crate) streaming: RefCell<Slab<Streaming>>,
    /// Responses seen, for sampling the check that consumers are not named by a credential.
    responses: Cell<u32>,
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            routes: Routes::default(),
            paths: Paths::default(),
            rmap: OnceCell::new(),
            streaming: RefCell::default(),
            responses: Cell::new(0),
        }
    }

    /// What is known of the route before routing: the template of a static path seen before,
    /// else a copy of the path.
    #[inline]
    pub(crate) fn early_route(self: &Rc<Self>, req: &ServiceRequest) -> EarlyRoute {
        if self.rmap.get().is_none() {
            let _ = self.rmap.set(req.resource_map().clone());
        }
        let path = req.path();
        if let Some(route) = self.routes.cached(path) {
            return EarlyRoute::Cached(route);
        }
        EarlyRoute::Path(PathCopy {
            worker: Rc::clone(self),
            index: self.paths.store(path),
        })
    }

    /// The route of a request that ended without a response (actix has dropped it, and its
    /// routing with it): the cached template of a static path, else the template the resource
    /// map gives the path (actix-web's guard-blind `match_pattern()` walk, as tracing-actix-web
    /// and sentry-actix name requests; with actix-router's regexes it costs ~7,000
    /// instructions, which is why it is not done before every request).
    pub(crate) fn route_without_request(&self, early: &EarlyRoute) -> Option<Rc<str>> {
        match early {
            EarlyRoute::Cached(route) => Some(Rc::clone(route)),
            EarlyRoute::Path(copy) => {
                let rmap = self.rmap.get()?;
                let pattern = self
                    .paths
                    .with(copy.index, |path| rmap.match_pattern(path))?;
                Some(self.routes.intern(normalize_route(pattern)))
            }
        }
    }

    /// Whether this response's consumer is checked against the request's credentials: the
    /// first 64 responses of the worker, then one in 4,096 (the check reads every header).
    #[inline]
    pub(crate) fn check_consumer(&self) -> bool {
        let n = self.responses.get().wrapping_add(1);
        self.responses.set(n);
        n <= 64 || n.is_multiple_of(4_096)
    }
}

/// What is known before routing of a request's route, for an exit where actix drops the
/// request (an `Err` from an inner service, a panic) and with it the resource map.
pub(crate) enum EarlyRoute {
    /// The cached template of a static path that routing matched before: exact, the same as
    /// routing gives.
    Cached(Rc<str>),
    /// A copy of the path, for finding the template after the request is gone (see
    /// [`Worker::route_without_request`]).
    Path(PathCopy),
}

impl EarlyRoute {
    fn cached(&self) -> Option<&Rc<str>> {
        match self {
            EarlyRoute::Cached(route) => Some(route),
            EarlyRoute::Path(_) => None,
        }
    }
}

/// A path kept in a worker's [`Paths`], released on drop.
pub(crate) struct PathCopy {
    worker: Rc<Worker>,
    index: u32,
}

impl Drop for PathCopy {
    fn drop(&mut self) {
        self.worker.paths.release(self.index);
    }
}

/// Copies of in-flight requests' paths, in reused buffers: no allocation per request once the
/// worker has seen its highest concurrency (long paths excepted), and the request's state
/// carries a 4-byte index instead of the path.
#[derive(Default)]
pub(crate) struct Paths {
    entries: RefCell<(Vec<String>, Vec<u32>)>,
}

impl Paths {
    /// Paths longer than this are not kept in a reused buffer (their buffer is freed).
    const KEEP_CAPACITY: usize = 512;

    fn store(&self, path: &str) -> u32 {
        let mut entries = self.entries.borrow_mut();
        let (bufs, free) = &mut *entries;
        match free.pop() {
            Some(index) => {
                let buf = &mut bufs[index as usize];
                buf.clear();
                buf.push_str(path);
                index
            }
            None => {
                bufs.push(path.to_owned());
                (bufs.len() - 1) as u32
            }
        }
    }

    fn with<R>(&self, index: u32, f: impl FnOnce(&str) -> R) -> R {
        f(self
            .entries
            .borrow()
            .0
            .get(index as usize)
            .map_or("", String::as_str))
    }

    fn release(&self, index: u32) {
        let mut entries = self.entries.borrow_mut();
        let (bufs, free) = &mut *entries;
        if let Some(buf) = bufs.get_mut(index as usize) {
            if buf.capacity() > Self::KEEP_CAPACITY {
                *buf = String::new();
            }
            free.push(index);
        }
    }
}

/// Route templates, per worker: static paths that routing matched are remembered, and so are
/// the templates of dynamic paths by their [`shape`] (a hash lookup instead of actix-web's
/// `match_pattern()`, which walks the resource map and builds a `String`); templates are
/// interned (`Rc<str>`, not a `String` per request).
///
/// A route is only given for a request that routing matched completely: a resource whose
/// pattern consumed the whole path and whose guards (the method guards of `#[get]` among them)
/// passed. A request that reached a default service (a 404 for an unknown path, or for a path
/// whose resource does not take this method) has no route: it is not an endpoint.
///
/// Both maps are bounded: past [`Routes::MAX`] entries nothing more is remembered.
#[derive(Default)]
pub(crate) struct Routes {
    by_path: RefCell<HashMap<Box<str>, Rc<str>>>,
    /// Templates of dynamic paths by their shape (see [`shape`]).
    by_shape: RefCell<Shapes>,
    interned: RefCell<HashSet<Rc<str>>>,
}

impl Routes {
    pub(crate) const MAX: usize = 1_024;
    /// Longer paths are not remembered.
    const MAX_PATH: usize = 256;

    /// The template of a static path that routing matched before.
    fn cached(&self, path: &str) -> Option<Rc<str>> {
        self.by_path.borrow().get(path).cloned()
    }

    /// After routing: the template of a request that routing matched completely, `None`
    /// otherwise.
    pub(crate) fn matched(&self, req: &HttpRequest, early: &EarlyRoute) -> Option<Rc<str>> {
        let info = req.match_info();
        if !info.unprocessed().is_empty() {
            // No resource took the whole path: a default service answered.
            return None;
        }
        let path = req.path();
        let cacheable = info.segment_count() == 0 && path.len() <= Self::MAX_PATH;
        if cacheable {
            if let Some(route) = early.cached() {
                return Some(Rc::clone(route));
            }
        }
        if !cacheable && path.len() <= Self::MAX_PATH {
            let mut by_shape = self.by_shape.borrow_mut();
            let Shapes { buf, known } = &mut *by_shape;
            if shape(info, buf) {
                if let Some(route) = known.get(buf.as_str()) {
                    return Some(Rc::clone(route));
                }
                let route = self.intern(normalize_route(req.match_pattern()?));
                if known.len() < Self::MAX {
                    known.insert(buf.as_str().into(), Rc::clone(&route));
                }
                return Some(route);
            }
        }
        // Routing matched a resource, so this is the template of that resource (guards
        // included), not the guard-blind walk's.
        let route = self.intern(normalize_route(req.match_pattern()?));
        // A path whose template is the path itself matched a static resource: whichever
        // resource (guard) it was, its template is the path.
        if cacheable && *route == *path {
            let mut by_path = self.by_path.borrow_mut();
            if by_path.len() < Self::MAX {
                by_path.insert(path.into(), Rc::clone(&route));
            }
        }
        Some(route)
    }

    fn intern(&self, route: String) -> Rc<str> {
        let mut interned = self.interned.borrow_mut();
        if let Some(known) = interned.get(route.as_str()) {
            return Rc::clone(known);
        }
        let route: Rc<str> = route.into();
        if interned.len() < Self::MAX {
            interned.insert(Rc::clone(&route));
        }
        route
    }
}

/// Templates by shape, with the buffer the shape of the request at hand is built in.
#[derive(Default)]
struct Shapes {
    buf: String,
    known: HashMap<Box<str>, Rc<str>>,
}

/// The shape of a matched path, into `out`: the path with each dynamic segment's value replaced
/// by its name between NUL bytes (`/items/7` matched by `/items/{id:\d+}` is
/// `/items/\0id\0`). The template's literal text is matched literally and its segments are the
/// values' places, so one shape has one template (normalised): the key that saves actix-web's
/// resource-map walk and its `String` for every request to a dynamic route. (The one exception
/// is contrived: two resources told apart only by guards whose patterns differ only in writing
/// the same last segment as `{tail}*` and `{tail:.*}` share a shape, and the first template
/// seen names both.) False, and nothing to cache, when a value is not a slice of the path (set
/// by hand) or the path has a NUL byte (no client can mimic a name).
fn shape(info: &actix_web::dev::Path<actix_web::dev::Url>, out: &mut String) -> bool {
    let path = info.as_str();
    if path.as_bytes().contains(&0) {
        return false;
    }
    out.clear();
    let base = path.as_ptr() as usize;
    let mut at = 0;
    for (name, value) in info.iter() {
        let start = (value.as_ptr() as usize).wrapping_sub(base);
        if start < at || start > path.len() || value.len() > path.len() - start {
            return false;
        }
        out.push_str(&path[at..start]);
        out.push('\0');
        out.push_str(name);
        out.push('\0');
        at = start + value.len();
    }
    out.push_str(&path[at..]);
    true
}

#[cfg(test)]
mod tests;
