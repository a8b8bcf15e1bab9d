//! The common request read in one pass: `Message::parse` leaves a request's params as JSON text
//! and its reader types them in a second pass; here, when `method` comes before `params` (as
//! every client writes them), the params are typed as they are met. Anything else (another
//! member order, a notification, a response, an unknown method, anything `Message::parse`
//! would refuse or params their type refuses) is declined, and the caller reads the text with
//! `Message::parse`, which stays the definition: what this returns is what that would give.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{Id, Scalar, ScalarVisitor};

/// Params typed by the method that names them.
pub trait TypedParams: Sized {
    /// The methods whose params are typed.
    type Method: Copy;

    /// The method called `name`, if its params are typed here.
    fn method(name: &str) -> Option<Self::Method>;

    /// Reads `method`'s params from the members of their object.
    fn read<'de, A: MapAccess<'de>>(method: Self::Method, members: A) -> Result<Self, A::Error>;

    /// `method`'s params when the request has none.
    fn absent(method: Self::Method) -> Option<Self>;
}

/// A request read in one pass: its id, its method and its typed params.
pub struct OnePass<T: TypedParams> {
    pub id: Id,
    pub method: T::Method,
    pub params: T,
}

impl<T: TypedParams> OnePass<T> {
    /// `None`: not the common request; read the text with `Message::parse`.
    pub fn read(text: &str) -> Option<OnePass<T>> {
        let mut de = serde_json::Deserializer::from_str(text);
        let read = de.deserialize_map(EnvelopeVisitor::<T>(std::marker::PhantomData));
        // Trailing characters other than white space make the text not JSON.
        read.ok().filter(|_| de.end().is_ok())
    }
}

/// The envelope's members this reader tells apart (escapes in names are read, as the derived
/// reader of `Message::parse` reads them).
enum Key {
    Jsonrpc,
    Id,
    Method,
    Params,
    /// `result` or `error`: never in a request.
    Answer,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        Ok(match s {
            "jsonrpc" => Key::Jsonrpc,
            "id" => Key::Id,
            "method" => Key::Method,
            "params" => Key::Params,
            "result" | "error" => Key::Answer,
            _ => Key::Other,
        })
    }
}

/// Declines the text: `Message::parse` reads it.
fn decline<E: de::Error>() -> E {
    E::custom("not the common request")
}

struct EnvelopeVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: TypedParams> Visitor<'de> for EnvelopeVisitor<T> {
    type Value = OnePass<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OnePass<T>, A::Error> {
        let mut version_seen = false;
        let mut id: Option<Id> = None;
        let mut method: Option<T::Method> = None;
        let mut params: Option<T> = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Jsonrpc if !version_seen => {
                    version_seen = true;
                    if map.next_value_seed(ScalarSeed)?.text().as_deref() != Some("2.0") {
                        return Err(decline());
                    }
                }
                Key::Id if id.is_none() => {
                    id = Some(map.next_value_seed(ScalarSeed)?.id().ok_or_else(decline)?);
                }
                Key::Method if method.is_none() => {
                    let name = map
                        .next_value_seed(ScalarSeed)?
                        .text()
                        .ok_or_else(decline)?;
                    method = Some(T::method(&name).ok_or_else(decline)?);
                }
                // Params before their method, or named twice: declined.
                Key::Params if params.is_none() => {
                    let method = method.ok_or_else(decline)?;
                    params = Some(map.next_value_seed(ParamsSeed::<T>(method))?);
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => return Err(decline()),
            }
        }
        let (true, Some(id), Some(method)) = (version_seen, id, method) else {
            return Err(decline());
        };
        let params = match params {
            Some(p) => p,
            None => T::absent(method).ok_or_else(decline)?,
        };
        Ok(OnePass { id, method, params })
    }
}

/// A member read as `Message::parse` reads `jsonrpc`, `id` and `method`.
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// The params of a known method: an object (an array would fill a struct by position), typed.
struct ParamsSeed<T: TypedParams>(T::Method);

impl<'de, T: TypedParams> DeserializeSeed<'de> for ParamsSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: TypedParams> Visitor<'de> for ParamsSeed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a params object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::read(self.0, map)
    }
}
