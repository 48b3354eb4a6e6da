//! Integration tests of the judge: a local stand-in judge model speaking OpenAI's wire format
//! (house style 4.7: a real server, no mocked traits), a real embedded store, the processor
//! runtime over the real embedded log. One binary: modules below.

mod demo;
mod judging;
mod runtime;
mod support;
