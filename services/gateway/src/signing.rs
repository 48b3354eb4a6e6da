//! The decision-signing key: loaded from `routing.signing_key_file`, or generated on first
//! start at `<data_dir>/keys/decision-signing.pk8` (PKCS#8, mode 0600, written atomically).
//!
//! In the distributed mode every ingress replica must sign with a key that `GET /v1/keys`
//! publishes: mount the same key file on every replica (a configured file that is missing is
//! an error, never a fresh key).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use switchyard_config::SigningKeyFile;
use switchyard_router::DecisionSigner;

/// Loads (or, at the default location, creates) the signing key.
pub fn load_signer(file: &SigningKeyFile) -> anyhow::Result<DecisionSigner> {
    let path = file.path();
    match std::fs::read(path) {
        Ok(doc) => DecisionSigner::from_pkcs8(&doc).with_context(|| {
            format!(
                "the decision-signing key {} is not an Ed25519 PKCS#8 key",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match file {
            SigningKeyFile::Configured(_) => anyhow::bail!(
                "config error: `routing.signing_key_file` names {}, which does not exist (create one with `openssl genpkey -algorithm ed25519 -outform DER -out FILE`)",
                path.display()
            ),
            SigningKeyFile::Generated(_) => generate(path),
        },
        Err(e) => Err(e).with_context(|| format!("cannot read the signing key {}", path.display())),
    }
}

fn generate(path: &Path) -> anyhow::Result<DecisionSigner> {
    let (signer, doc) = DecisionSigner::generate().context("cannot generate a signing key")?;
    let dir = path
        .parent()
        .context("the signing key path has no parent directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("pk8.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(&doc)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move the new signing key to {}", path.display()))?;
    tracing::info!(key_id = %signer.public_key().key_id, path = %path.display(), "generated a decision-signing key");
    Ok(signer)
}
