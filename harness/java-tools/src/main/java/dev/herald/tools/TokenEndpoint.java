package dev.herald.tools;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * A small OAuth 2.0 token endpoint for the secured broker's OIDC listener
 * ({@code harness/kafka start --secure}): the client-credentials grant (RFC 6749
 * section 4.4) issuing RS256-signed JWTs, and the JSON Web Key Set the broker's
 * {@code OAuthBearerValidatorCallbackHandler} checks them with (KIP-768).
 *
 * <pre>
 * TokenEndpoint --port P [--https-port Q --keystore FILE.p12 --password PW]
 *     --issuer ISS --audience AUD --clients ID:SECRET:LIFETIME_S[,...] --ready-file FILE
 * </pre>
 *
 * <ul>
 *   <li>{@code POST /token}: {@code grant_type=client_credentials} and an optional
 *       {@code scope}; the client's id and secret in HTTP Basic auth (as Java's
 *       {@code ClientCredentialsJwtRetriever} sends them) or in the form. A token
 *       lives LIFETIME_S seconds from now (a negative value: it expired that long
 *       ago). A wrong secret is 401 {@code invalid_client}.
 *   <li>{@code GET /jwks}: the signing key.
 *   <li>{@code GET /issued?client=ID}: how many tokens ID was issued.
 * </ul>
 *
 * The HTTPS port serves the same with the key pair in the keystore. The key
 * pair that signs tokens is made at start. Runs until killed. Exit codes: 0, 2
 * failure, 64 usage.
 */
public final class TokenEndpoint {
    private static final String TOOL = "TokenEndpoint";
    private static final String USAGE = "TokenEndpoint --port P [--https-port Q --keystore FILE.p12 --password PW]"
            + " --issuer ISS --audience AUD --clients ID:SECRET:LIFETIME_S[,...] --ready-file FILE";
    private static final String KID = "herald-test-key";
    private static final Base64.Encoder B64 = Base64.getUrlEncoder().withoutPadding();

    private final KeyPair keys;
    private final String issuer;
    private final String audience;
    private final Map<String, String[]> clients = new HashMap<>();
    private final Map<String, AtomicLong> issued = new ConcurrentHashMap<>();

    private TokenEndpoint(String issuer, String audience, String clientList) throws Exception {
        KeyPairGenerator gen = KeyPairGenerator.getInstance("RSA");
        gen.initialize(2048);
        this.keys = gen.generateKeyPair();
        this.issuer = issuer;
        this.audience = audience;
        for (String c : clientList.split(",")) {
            String[] parts = c.split(":", 3);
            if (parts.length != 3) {
                Cli.fail(TOOL, Cli.EXIT_USAGE, "--clients: expected ID:SECRET:LIFETIME_S, got " + c);
            }
            Long.parseLong(parts[2]);
            clients.put(parts[0], new String[] {parts[1], parts[2]});
        }
    }

    public static void main(String[] args) throws Exception {
        Cli cli = Cli.parse(TOOL, USAGE, args,
                Set.of("port", "https-port", "keystore", "password", "issuer", "audience", "clients", "ready-file"));
        TokenEndpoint t = new TokenEndpoint(cli.required("issuer"), cli.required("audience"), cli.required("clients"));
        HttpServer http = HttpServer.create(new InetSocketAddress("127.0.0.1", cli.requiredInt("port")), 50);
        t.serve(http);
        int httpsPort = cli.optionalInt("https-port", 0);
        if (httpsPort != 0) {
            HttpsServer https = HttpsServer.create(new InetSocketAddress("127.0.0.1", httpsPort), 50);
            https.setHttpsConfigurator(new HttpsConfigurator(
                    sslContext(cli.required("keystore"), cli.required("password").toCharArray())));
            t.serve(https);
        }
        Files.writeString(Path.of(cli.required("ready-file")), "ready\n");
    }

    private static SSLContext sslContext(String keystore, char[] password) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(keystore)) {
            ks.load(in, password);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, password);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    private void serve(HttpServer server) {
        server.createContext("/token", this::token);
        server.createContext("/jwks", this::jwks);
        server.createContext("/issued", this::issued);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
    }

    private void token(HttpExchange ex) throws IOException {
        try (ex) {
            if (!"POST".equals(ex.getRequestMethod())) {
                reply(ex, 405, error("invalid_request", "POST only"));
                return;
            }
            Map<String, String> form = parseForm(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            String id = form.get("client_id");
            String secret = form.get("client_secret");
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            if (auth != null && auth.startsWith("Basic ")) {
                String pair = new String(Base64.getDecoder().decode(auth.substring(6).trim()), StandardCharsets.UTF_8);
                int colon = pair.indexOf(':');
                if (colon >= 0) {
                    id = pair.substring(0, colon);
                    secret = pair.substring(colon + 1);
                }
            }
            if (!"client_credentials".equals(form.get("grant_type"))) {
                reply(ex, 400, error("unsupported_grant_type", "grant_type must be client_credentials"));
                return;
            }
            String[] client = id == null ? null : clients.get(id);
            if (client == null || !client[0].equals(secret)) {
                reply(ex, 401, error("invalid_client", "unknown client or wrong secret"));
                return;
            }
            long lifetime = Long.parseLong(client[1]);
            long now = System.currentTimeMillis() / 1000;
            String scope = form.getOrDefault("scope", "");
            String claims = "{\"iss\":" + quote(issuer) + ",\"aud\":" + quote(audience)
                    + ",\"sub\":" + quote(id) + ",\"iat\":" + (now - Math.max(0, -lifetime) - 1)
                    + ",\"exp\":" + (now + lifetime)
                    // No scope asked for, no scope claim: Kafka's validator refuses an empty one.
                    + (scope.isEmpty() ? "" : ",\"scope\":" + quote(scope))
                    + ",\"jti\":" + quote(id + "-" + issued.computeIfAbsent(id, k -> new AtomicLong()).incrementAndGet())
                    + "}";
            String jwt = sign(claims);
            reply(ex, 200, "{\"access_token\":" + quote(jwt) + ",\"token_type\":\"Bearer\",\"expires_in\":"
                    + Math.max(0, lifetime) + "}");
        } catch (Exception e) {
            reply(ex, 500, error("server_error", String.valueOf(e)));
        }
    }

    private String sign(String claims) throws Exception {
        String header = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"" + KID + "\"}";
        String input = B64.encodeToString(header.getBytes(StandardCharsets.UTF_8)) + "."
                + B64.encodeToString(claims.getBytes(StandardCharsets.UTF_8));
        Signature s = Signature.getInstance("SHA256withRSA");
        s.initSign(keys.getPrivate());
        s.update(input.getBytes(StandardCharsets.US_ASCII));
        return input + "." + B64.encodeToString(s.sign());
    }

    private void jwks(HttpExchange ex) throws IOException {
        try (ex) {
            RSAPublicKey pub = (RSAPublicKey) keys.getPublic();
            reply(ex, 200, "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"" + KID
                    + "\",\"n\":\"" + unsigned(pub.getModulus()) + "\",\"e\":\"" + unsigned(pub.getPublicExponent())
                    + "\"}]}");
        }
    }

    private void issued(HttpExchange ex) throws IOException {
        try (ex) {
            String query = ex.getRequestURI().getRawQuery();
            String id = query == null ? null : parseForm(query).get("client");
            AtomicLong n = id == null ? null : issued.get(id);
            reply(ex, 200, "{\"issued\":" + (n == null ? 0 : n.get()) + "}");
        }
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder();
        Json.string(b, s);
        return b.toString();
    }

    private static String unsigned(BigInteger v) {
        byte[] b = v.toByteArray();
        if (b.length > 1 && b[0] == 0) {
            b = java.util.Arrays.copyOfRange(b, 1, b.length);
        }
        return B64.encodeToString(b);
    }

    private static String error(String code, String description) {
        return "{\"error\":" + quote(code) + ",\"error_description\":" + quote(description) + "}";
    }

    private static Map<String, String> parseForm(String body) {
        Map<String, String> out = new HashMap<>();
        for (String pair : body.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int eq = pair.indexOf('=');
            String k = eq < 0 ? pair : pair.substring(0, eq);
            String v = eq < 0 ? "" : pair.substring(eq + 1);
            out.put(URLDecoder.decode(k, StandardCharsets.UTF_8), URLDecoder.decode(v, StandardCharsets.UTF_8));
        }
        return out;
    }

    private static void reply(HttpExchange ex, int status, String json) throws IOException {
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }
}
