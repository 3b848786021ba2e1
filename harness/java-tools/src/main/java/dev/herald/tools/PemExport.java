package dev.herald.tools;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.util.Base64;
import java.util.Set;

/**
 * Writes the private key of a PKCS12 key entry as an unencrypted PKCS#8 PEM file
 * ({@code -----BEGIN PRIVATE KEY-----}) and its certificate chain as PEM: what
 * keytool cannot do. The harness uses it for the client certificates of the
 * secured broker ({@code harness/kafka start --secure}).
 *
 * <pre>
 * PemExport --keystore FILE.p12 --password PW --alias NAME --key-out KEY.pem --chain-out CHAIN.pem
 * </pre>
 *
 * Exit codes: 0 success, 2 failure, 64 usage.
 */
public final class PemExport {
    private static final String TOOL = "PemExport";
    private static final String USAGE =
            "PemExport --keystore FILE.p12 --password PW --alias NAME --key-out KEY.pem --chain-out CHAIN.pem";

    private PemExport() {}

    public static void main(String[] args) throws Exception {
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("keystore", "password", "alias", "key-out", "chain-out"));
        char[] password = cli.required("password").toCharArray();
        String alias = cli.required("alias");
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(cli.required("keystore"))) {
            ks.load(in, password);
        }
        Key key = ks.getKey(alias, password);
        if (!(key instanceof PrivateKey)) {
            Cli.fail(TOOL, 2, "no private key under alias " + alias);
        }
        Certificate[] chain = ks.getCertificateChain(alias);
        if (chain == null || chain.length == 0) {
            Cli.fail(TOOL, 2, "no certificate chain under alias " + alias);
        }
        write(Path.of(cli.required("key-out")), pem("PRIVATE KEY", key.getEncoded()));
        StringBuilder certs = new StringBuilder();
        for (Certificate c : chain) {
            certs.append(pem("CERTIFICATE", c.getEncoded()));
        }
        write(Path.of(cli.required("chain-out")), certs.toString());
    }

    private static String pem(String label, byte[] der) {
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der);
        return "-----BEGIN " + label + "-----\n" + body + "\n-----END " + label + "-----\n";
    }

    private static void write(Path path, String text) throws IOException {
        Files.writeString(path, text, StandardCharsets.US_ASCII);
    }
}
