//! Where the files go: a local directory or an S3-compatible bucket, as one `ObjectStore`.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use switchyard_config::SinkTarget;

/// Why the object store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The local directory cannot be created.
    #[error("cannot create the export directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The object store rejected its settings.
    #[error("cannot open the export store: {0}")]
    Objects(#[from] object_store::Error),
}

/// Opens the export target. A local directory is created when missing; an S3 bucket takes
/// unset credentials from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, ...).
pub fn open(target: &SinkTarget) -> Result<Arc<dyn ObjectStore>, OpenError> {
    match target {
        SinkTarget::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?))
        }
        SinkTarget::S3 {
            bucket,
            prefix,
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            allow_http,
        } => {
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(region)
                .with_allow_http(*allow_http);
            if let Some(endpoint) = endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(key) = access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            let store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
            if prefix.is_empty() {
                Ok(store)
            } else {
                Ok(Arc::new(PrefixStore::new(store, prefix.as_str())))
            }
        }
    }
}
