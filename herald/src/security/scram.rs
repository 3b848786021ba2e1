//! The client side of SCRAM (RFC 5802) with SHA-256 (RFC 7677) and SHA-512, as
//! Kafka's SCRAM-SHA-256 and SCRAM-SHA-512 mechanisms use it: no channel binding
//! (`n,,`), and the server's signature checked, so a server that does not know
//! the password cannot pose as the broker.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::Secret;

/// The fewest PBKDF2 iterations herald accepts from a server (Kafka's minimum, and
/// RFC 7677's); fewer would make a captured exchange cheap to brute-force.
const MIN_ITERATIONS: u32 = 4096;

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    #[allow(clippy::expect_used)]
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with HMAC of this hash.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            ScramHash::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }
}

/// One SCRAM exchange, client side: [`client_first`](Self::client_first), then
/// [`server_first`](Self::server_first) gives the client-final message, then
/// [`server_final`](Self::server_final) checks the server's signature.
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: Secret,
    nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A new exchange with a fresh random nonce.
    pub(crate) fn new(hash: ScramHash, username: &str, password: &Secret) -> Result<ScramClient, String> {
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).map_err(|e| format!("no randomness for the SCRAM nonce: {e}"))?;
        Ok(ScramClient::with_nonce(hash, username, password, &B64.encode(raw)))
    }

    /// An exchange with a given nonce (for the RFC test vectors).
    pub(crate) fn with_nonce(hash: ScramHash, username: &str, password: &Secret, nonce: &str) -> ScramClient {
        // saslname: '=' and ',' are escaped (RFC 5802 section 5.1).
        let name = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            password: password.clone(),
            nonce: nonce.to_owned(),
            client_first_bare: format!("n={name},r={nonce}"),
            server_signature: None,
        }
    }

    /// The client-first message.
    pub(crate) fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Takes the server-first message; returns the client-final message.
    pub(crate) fn server_first(&mut self, msg: &[u8]) -> Result<String, String> {
        let msg = std::str::from_utf8(msg).map_err(|_| "server-first message is not UTF-8".to_owned())?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in msg.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(format!("server error: {v}")),
                Some(("m", _)) => return Err("server requires an unsupported SCRAM extension".to_owned()),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err("server nonce does not extend the client nonce".to_owned());
        }
        let salt =
            B64.decode(salt.ok_or("server-first message has no salt")?).map_err(|_| "salt is not base64")?;
        let iterations: u32 = iterations
            .ok_or("server-first message has no iteration count")?
            .parse()
            .map_err(|_| "iteration count is not a number")?;
        if iterations < MIN_ITERATIONS {
            return Err(format!(
                "server asks for {iterations} iterations, fewer than the minimum {MIN_ITERATIONS}"
            ));
        }
        let h = self.hash;
        let salted = h.salted_password(self.password.expose().as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{msg},{without_proof}", self.client_first_bare);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.server_signature = Some(h.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message: the server proves it knows the password.
    pub(crate) fn server_final(&self, msg: &[u8]) -> Result<(), String> {
        let msg = std::str::from_utf8(msg).map_err(|_| "server-final message is not UTF-8".to_owned())?;
        let expected = self.server_signature.as_ref().ok_or("server-final message before server-first")?;
        for attr in msg.split(',') {
            match attr.split_once('=') {
                Some(("e", v)) => return Err(format!("server error: {v}")),
                Some(("v", v)) => {
                    let got = B64.decode(v).map_err(|_| "server signature is not base64")?;
                    return if &got == expected {
                        Ok(())
                    } else {
                        Err("the server's signature is wrong: it does not know the password (or is not the broker)"
                            .to_owned())
                    };
                }
                _ => {}
            }
        }
        Err("server-final message has no signature".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: SCRAM-SHA-256 with user "user", password "pencil".
    #[test]
    fn rfc7677_sha256_vector() {
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha256,
            "user",
            &Secret::new("pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            c.server_first(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        let e = c.server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap_err();
        assert!(e.contains("signature is wrong"), "{e}");
    }

    /// SCRAM-SHA-512 with the RFC 7677 inputs; the expected proof and signature were
    /// computed independently with Python's hashlib/hmac (pbkdf2_hmac('sha512', ...)).
    #[test]
    fn sha512_vector() {
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha512,
            "user",
            &Secret::new("pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let final_msg = c.server_first(server_first).unwrap();
        assert_eq!(
            final_msg,
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p={SHA512_PROOF}")
        );
        c.server_final(format!("v={SHA512_SIGNATURE}").as_bytes()).unwrap();
    }

    const SHA512_PROOF: &str =
        "gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==";
    const SHA512_SIGNATURE: &str =
        "ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==";

    #[test]
    fn bad_server_messages_are_refused() {
        let pw = Secret::new("pencil");
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "user", &pw, "abc");
        assert!(c.server_first(b"r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").unwrap_err().contains("nonce"));
        assert!(
            c.server_first(b"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1").unwrap_err().contains("iterations")
        );
        assert!(c.server_first(b"e=unknown-user").unwrap_err().contains("unknown-user"));
        let c = ScramClient::with_nonce(ScramHash::Sha256, "a=b,c", &pw, "n");
        assert_eq!(c.client_first(), "n,,n=a=3Db=2Cc,r=n");
        let c = ScramClient::new(ScramHash::Sha512, "u", &pw).unwrap();
        assert!(!c.nonce.contains(',') && c.nonce.len() >= 24);
    }
}
