package dev.herald.tools;

import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;

/**
 * Sets a client quota for one {@code client.id} with the Java Admin client
 * ({@code alterClientQuotas}, KIP-546), e.g. {@code producer_byte_rate}: a
 * producer over it is throttled by the broker (KIP-219).
 *
 * Exit codes: 0 set, 2 error or timeout, 64 usage.
 */
public final class ClientQuota {
    private static final String TOOL = "ClientQuota";
    private static final String USAGE =
            "ClientQuota --bootstrap HOST:PORT[,...] --client-id ID --quota NAME=VALUE [--timeout-ms 60000]";

    private ClientQuota() {}

    public static void main(String[] args) throws InterruptedException {
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("bootstrap", "client-id", "quota", "timeout-ms"));
        String bootstrap = cli.required("bootstrap");
        String clientId = cli.required("client-id");
        String quota = cli.required("quota");
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);
        int eq = quota.indexOf('=');
        if (eq <= 0) {
            cli.usageError("--quota needs NAME=VALUE, got '" + quota + "'");
        }
        String name = quota.substring(0, eq);
        double value = Double.parseDouble(quota.substring(eq + 1));
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "herald-client-quota");
        try (Admin admin = Admin.create(props)) {
            ClientQuotaEntity entity = new ClientQuotaEntity(Map.of(ClientQuotaEntity.CLIENT_ID, clientId));
            ClientQuotaAlteration alteration =
                    new ClientQuotaAlteration(entity, List.of(new ClientQuotaAlteration.Op(name, value)));
            admin.alterClientQuotas(List.of(alteration)).all().get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Cli.fail(TOOL, 2, "altering the quota failed: " + e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            Cli.fail(TOOL, 2, "timed out after " + timeoutMs + " ms");
        }
    }
}
