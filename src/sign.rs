//! Signing keys and the signature of a release's manifest, in minisign's format (the `minisign`
//! crate; Debian's `minisign -Vm manifest.json -p KEY.pub` verifies what this writes).
//!
//! Owns the key files (a secret key readable by its owner only, the public key beside it as
//! `FILE.pub`), the key ID as minisign prints it, and signing and verifying one manifest. A signed
//! manifest carries the SHA-256 of every other file of its folder, so one signature covers the
//! release. Keys are unencrypted: scheduled releases run without anyone to type a password, so
//! the file's permissions are what keeps the key secret, and a key others can read is refused.
//! Imports nothing of the crate.

use std::fs::{File, OpenOptions};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};

/// The name of a manifest's signature, beside it in the release folder.
pub const SIGNATURE_FILE: &str = "manifest.json.minisig";

/// What the signature is, for the manifest.
pub const ALGORITHM: &str = "minisign: Ed25519 over the BLAKE2b-512 hash of manifest.json, with a signed trusted comment (verify with `minisign -Vm manifest.json -p KEY.pub`)";

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("signing key `{path}`: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A secret key, ready to sign.
pub struct SigningKey {
    secret: SecretKey,
    public: PublicKey,
    /// The key ID as minisign prints it (16 upper-case hex digits).
    pub id: String,
}

/// A key ID as minisign prints it: the 8 bytes of the key number read little-endian, in hex.
pub fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    let n = keynum.len().min(8);
    bytes[..n].copy_from_slice(&keynum[..n]);
    format!("{:016X}", u64::from_le_bytes(bytes))
}

/// The public key's file for a secret key file: `FILE.pub`.
pub fn public_key_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes a new key pair: the secret key to `out` (mode 0600, never over an existing file) and
/// the public key to `out.pub`. Returns the key ID.
pub fn new_key(out: &Path) -> Result<String, SignError> {
    let public_path = public_key_path(out);
    let key_error = |path: &Path, message: String| SignError::Key {
        path: path.to_path_buf(),
        message,
    };
    for p in [out, public_path.as_path()] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(key_error(
                p,
                "already exists; a key is never overwritten (choose another --out)".into(),
            ));
        }
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SignError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let pair = KeyPair::generate_unencrypted_keypair()
        .map_err(|e| key_error(out, format!("cannot generate a key pair: {e}")))?;
    let id = key_id(pair.pk.keynum());
    let secret = pair
        .sk
        .to_box(Some(&format!(
            "safestat signing key {id} (secret: keep it readable by its owner only)"
        )))
        .map_err(|e| key_error(out, e.to_string()))?
        .into_string();
    let public = pair
        .pk
        .to_box()
        .map_err(|e| key_error(&public_path, e.to_string()))?
        .into_string();
    write_new(out, secret.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public_path, public.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    Ok(id)
}

/// Creates `path` (refusing an existing one) with `mode`, writes and fsyncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignError> {
    let io = |source| SignError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f: File = options.open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

impl SigningKey {
    /// Reads a secret key file made by `safestat key new`. Refuses a file
    /// that its group or others may read, and a password-protected key (nobody is there to type
    /// the password in a scheduled release).
    pub fn load(path: &Path) -> Result<SigningKey, SignError> {
        let key_error = |message: String| SignError::Key {
            path: path.to_path_buf(),
            message,
        };
        let meta =
            std::fs::metadata(path).map_err(|e| key_error(format!("cannot read it: {e}")))?;
        let text =
            std::fs::read_to_string(path).map_err(|e| key_error(format!("cannot read it: {e}")))?;
        let boxed = SecretKeyBox::from_string(&text)
            .map_err(|e| key_error(format!("not a minisign secret key: {e}")))?;
        let secret = boxed.into_unencrypted_secret_key().map_err(|e| {
            key_error(format!(
                "not a secret key made by `safestat key new --out FILE` ({e})"
            ))
        })?;
        if secret.is_encrypted() {
            return Err(key_error(
                "is protected by a password; safestat signs unattended releases and needs a key made by `safestat key new --out FILE`".into(),
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(key_error(format!(
                    "its group or others may use it (mode {mode:03o}); a secret key must be readable by its owner only: `chmod 600 {}`",
                    path.display()
                )));
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let public = PublicKey::from_secret_key(&secret)
            .map_err(|e| key_error(format!("not a usable secret key: {e}")))?;
        let id = key_id(public.keynum());
        Ok(SigningKey { secret, public, id })
    }

    /// The public key as minisign's base64 line (what `FILE.pub` holds under its comment).
    pub fn public_base64(&self) -> String {
        self.public.to_base64()
    }

    /// The signature file's text for `bytes`, whose trusted (signed) comment is `comment` (one
    /// line).
    pub fn sign(&self, bytes: &[u8], comment: &str) -> String {
        let comment = comment.replace(['\n', '\r'], " ");
        minisign::sign(
            Some(&self.public),
            &self.secret,
            Cursor::new(bytes),
            Some(&comment),
            Some(&format!("signature from safestat key {}", self.id)),
        )
        .expect("signing bytes in memory with a checked key")
        .into_string()
    }
}

/// What a signature file says before it is checked: the key that made it and its signed comment.
pub struct SignatureInfo {
    pub key_id: String,
    pub trusted_comment: String,
}

/// A signature file parsed, its shape checked: four lines, the last the 64-byte signature of the
/// trusted comment in base64 (the `minisign` crate panics on a shorter one).
fn signature_box(text: &str) -> Result<SignatureBox, String> {
    let lines: Vec<&str> = text.lines().collect();
    // 64 bytes are 88 base64 characters, ending `==`.
    if lines.len() < 4 || lines[3].trim().len() != 88 {
        return Err("not a minisign signature: it needs four lines, the last a 64-byte signature of the trusted comment".into());
    }
    SignatureBox::from_string(text).map_err(|e| format!("not a minisign signature: {e}"))
}

/// Reads a signature file's key ID and trusted comment (nothing is verified).
pub fn read_signature(text: &str) -> Result<SignatureInfo, String> {
    let sig = signature_box(text)?;
    Ok(SignatureInfo {
        key_id: key_id(sig.keynum()),
        trusted_comment: sig.trusted_comment().unwrap_or_default(),
    })
}

/// A public key file's key.
pub struct VerifyingKey {
    key: PublicKey,
    pub id: String,
}

impl VerifyingKey {
    /// Reads a minisign public key file (`FILE.pub`).
    pub fn load(path: &Path) -> Result<VerifyingKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read public key `{}`: {e}", path.display()))?;
        let key = PublicKeyBox::from_string(&text)
            .and_then(PublicKeyBox::into_public_key)
            .map_err(|e| format!("`{}` is not a minisign public key: {e}", path.display()))?;
        let id = key_id(key.keynum());
        Ok(VerifyingKey { key, id })
    }

    /// A public key from minisign's base64 line (as the ledger records it).
    pub fn from_base64(line: &str) -> Result<VerifyingKey, String> {
        let key =
            PublicKey::from_base64(line).map_err(|e| format!("not a minisign public key: {e}"))?;
        let id = key_id(key.keynum());
        Ok(VerifyingKey { key, id })
    }

    /// Checks that `signature` (a signature file's text) is this key's over `bytes`, its
    /// trusted comment included.
    pub fn verify(&self, bytes: &[u8], signature: &str) -> Result<(), String> {
        let sig = signature_box(signature)?;
        minisign::verify(&self.key, &sig, Cursor::new(bytes), true, false, false)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_signs_what_its_public_key_verifies_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("office.key");
        let id = new_key(&path).unwrap();
        let key = SigningKey::load(&path).unwrap();
        assert_eq!(key.id, id);
        let public = VerifyingKey::load(&public_key_path(&path)).unwrap();
        assert_eq!(public.id, id);
        let sig = key.sign(b"manifest", "release x");
        assert_eq!(read_signature(&sig).unwrap().key_id, id);
        assert_eq!(read_signature(&sig).unwrap().trusted_comment, "release x");
        public.verify(b"manifest", &sig).unwrap();
        assert!(public.verify(b"manifest!", &sig).is_err());
        // Another key's signature of the same bytes.
        let other = tmp.path().join("other.key");
        new_key(&other).unwrap();
        let forged = SigningKey::load(&other)
            .unwrap()
            .sign(b"manifest", "release x");
        assert!(public.verify(b"manifest", &forged).is_err());
        // A key is never overwritten.
        assert!(new_key(&path).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        new_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = SigningKey::load(&path).err().unwrap().to_string();
        assert!(err.contains("group or others may use it"), "{err}");
    }
}
