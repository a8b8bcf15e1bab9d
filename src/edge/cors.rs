//! The CORS layer: actix-cors for every request that carries an `Origin` (each CORS request and
//! preflight a browser sends does) or is an `OPTIONS`; every other request passes straight to
//! the app, its response given the `Vary` that actix-cors would add, and no CORS headers, which
//! mean nothing to a client that sent no `Origin`. actix-cors boxes a future and rewrites two
//! headers on every request it sees; most MCP clients are not browsers.

use std::marker::PhantomData;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_cors::{Cors, CorsMiddleware};
use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use futures_util::future::{Either, FutureExt, LocalBoxFuture, Map};

/// `Cors`, consulted only where it has something to say.
pub struct OriginCors(pub Cors);

impl<S, B> Transform<S, ServiceRequest> for OriginCors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = OriginCorsMiddleware<S, B>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let app = Rc::new(service);
        let cors = self.0.new_transform(Shared(Rc::clone(&app)));
        Box::pin(async move {
            Ok(OriginCorsMiddleware {
                app,
                cors: cors.await?,
                _body: PhantomData,
            })
        })
    }
}

/// One app service shared by both ways through the layer.
pub struct Shared<S>(Rc<S>);

impl<S: Service<ServiceRequest>> Service<ServiceRequest> for Shared<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> S::Future {
        self.0.call(req)
    }
}

type Direct<B> =
    fn(Result<ServiceResponse<B>, Error>) -> Result<ServiceResponse<EitherBody<B>>, Error>;

pub struct OriginCorsMiddleware<S, B> {
    app: Rc<S>,
    cors: CorsMiddleware<Shared<S>>,
    _body: PhantomData<B>,
}

impl<S, B> Service<ServiceRequest> for OriginCorsMiddleware<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Either<
        Map<S::Future, Direct<B>>,
        <CorsMiddleware<Shared<S>> as Service<ServiceRequest>>::Future,
    >;

    forward_ready!(app);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if req.method() == Method::OPTIONS || req.headers().contains_key(header::ORIGIN) {
            return Either::Right(self.cors.call(req));
        }
        Either::Left(self.app.call(req).map(vary as Direct<B>))
    }
}

/// The `Vary` actix-cors adds to every response, `Origin` or not (the response varies with
/// them), also on an error's response.
fn vary<B>(
    res: Result<ServiceResponse<B>, Error>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    match res {
        Ok(mut res) => {
            add_vary(res.headers_mut());
            Ok(res.map_into_left_body())
        }
        Err(mut e) => {
            e.add_response_mapper(|mut res| {
                add_vary(res.headers_mut());
                res
            });
            Err(e)
        }
    }
}

fn add_vary(headers: &mut HeaderMap) {
    const VARY: &str = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
    let value = match headers.get(header::VARY) {
        None => HeaderValue::from_static(VARY),
        Some(v) => {
            let mut joined = v.as_bytes().to_vec();
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(VARY.as_bytes());
            HeaderValue::from_bytes(&joined).expect("a header value joined with ASCII")
        }
    };
    headers.insert(header::VARY, value);
}
