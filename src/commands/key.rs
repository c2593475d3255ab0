//! `safestat key new --out FILE`: a signing key pair for a dataset's release folders.

use std::path::Path;

use crate::console::print;
use crate::error::Error;
use crate::sign;

/// Writes the pair and says how to use it.
pub fn new(out: &Path) -> Result<(), Error> {
    let id = sign::new_key(out)?;
    let public = sign::public_key_path(out);
    print(&format!(
        "wrote secret key {} (readable by its owner only) and public key {}; key ID {id}\n\
         sign a dataset's releases with `signing_key = \"...\"` in its policy's [dataset] (or SAFESTAT_SIGNING_KEY);\n\
         publish {} so that anyone can check a release: `safestat verify RELEASE_DIR --public-key {}` or `minisign -Vm manifest.json -p {}`\n",
        out.display(),
        public.display(),
        public.display(),
        public.display(),
        public.display(),
    ))
}
