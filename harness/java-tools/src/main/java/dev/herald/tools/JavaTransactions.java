package dev.herald.tools;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Runs transactions with the real Java producer: {@code --plan commit:2,abort:1}
 * begins one transaction per entry, sends that many records (key
 * "s&lt;step&gt;-&lt;i&gt;", value "&lt;commit|abort&gt;-&lt;step&gt;-&lt;i&gt;", default
 * partitioner), with {@code --group G} also sends the offset &lt;step + 1&gt; of
 * partition 0 of the topic for group G (from outside the group protocol), flushes
 * (so aborted records are written too), then commits or aborts. Prints {@code <step> committed|aborted} per entry.
 *
 * Exit codes: 0 success, 2 client error, 64 usage.
 */
public final class JavaTransactions {
    private static final String TOOL = "JavaTransactions";
    private static final String USAGE = "JavaTransactions --bootstrap HOST:PORT[,...] --topic T --transactional-id ID"
            + " --plan commit:N,abort:N,... [--group G] [--timeout-ms 60000]";

    private JavaTransactions() {}

    public static void main(String[] args) {
        Cli cli = Cli.parse(TOOL, USAGE, args,
                Set.of("bootstrap", "topic", "transactional-id", "plan", "group", "timeout-ms"));
        String bootstrap = cli.required("bootstrap");
        String topic = cli.required("topic");
        String id = cli.required("transactional-id");
        String plan = cli.required("plan");
        String group = cli.optional("group", "");
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "herald-java-transactions");
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(timeoutMs));
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(Math.max(timeoutMs, 1000)));
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(Math.min(30_000, Math.max(timeoutMs, 1000))));
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");

        StringBuilder out = new StringBuilder();
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            producer.initTransactions();
            String[] steps = plan.split(",");
            for (int step = 0; step < steps.length; step++) {
                String[] kv = steps[step].split(":");
                if (kv.length != 2 || !(kv[0].equals("commit") || kv[0].equals("abort"))) {
                    Cli.fail(TOOL, 64, "bad plan entry '" + steps[step] + "'\nusage: " + USAGE);
                }
                boolean commit = kv[0].equals("commit");
                int count = Integer.parseInt(kv[1]);
                producer.beginTransaction();
                for (int i = 0; i < count; i++) {
                    producer.send(new ProducerRecord<>(topic, utf8("s" + step + "-" + i), utf8(kv[0] + "-" + step + "-" + i)));
                }
                if (!group.isEmpty()) {
                    producer.sendOffsetsToTransaction(
                            Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(step + 1)),
                            new ConsumerGroupMetadata(group));
                }
                // Written before the end either way, so an abort leaves records to skip.
                producer.flush();
                if (commit) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
                out.append(step).append(commit ? " committed" : " aborted").append('\n');
            }
        } catch (org.apache.kafka.common.KafkaException e) {
            System.out.print(out);
            Cli.fail(TOOL, 2, "producer error: " + e);
        }
        System.out.print(out);
        System.out.flush();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
