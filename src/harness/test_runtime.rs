//! The runtime a tokio test runs on: a `Runtime`, or a `LocalRuntime` for
//! `flavor = "local"`, built and driven alike.

use std::future::Future;
use std::time::Duration;

use crate::harness::spec::Flavor;

/// The runtime a tokio test runs on: a `Runtime`, or a `LocalRuntime` for
/// `flavor = "local"`.
pub(crate) enum TestRuntime {
    Runtime(tokio::runtime::Runtime),
    Local(tokio::runtime::LocalRuntime),
}

impl TestRuntime {
    #[track_caller]
    pub(crate) fn build(builder: &mut tokio::runtime::Builder, flavor: Flavor) -> Self {
        builder.enable_all();
        let built = match flavor {
            Flavor::Local => builder.build_local(Default::default()).map(TestRuntime::Local),
            Flavor::CurrentThread | Flavor::MultiThread => builder.build().map(TestRuntime::Runtime),
        };
        // `match`, not a closure: `#[track_caller]` then points at the test.
        match built {
            Ok(runtime) => runtime,
            Err(error) => panic!("taskleak: failed building the test's tokio runtime: {error}"),
        }
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        match self {
            TestRuntime::Runtime(runtime) => runtime.handle(),
            TestRuntime::Local(runtime) => runtime.handle(),
        }
    }

    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            TestRuntime::Runtime(runtime) => runtime.block_on(future),
            TestRuntime::Local(runtime) => runtime.block_on(future),
        }
    }

    pub(crate) fn shutdown_background(self) {
        match self {
            TestRuntime::Runtime(runtime) => runtime.shutdown_background(),
            TestRuntime::Local(runtime) => runtime.shutdown_background(),
        }
    }

    pub(crate) fn shutdown_timeout(self, limit: Duration) {
        match self {
            TestRuntime::Runtime(runtime) => runtime.shutdown_timeout(limit),
            TestRuntime::Local(runtime) => runtime.shutdown_timeout(limit),
        }
    }
}
