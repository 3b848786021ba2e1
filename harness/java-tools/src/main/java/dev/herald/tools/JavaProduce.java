package dev.herald.tools;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Sends N records with the real Java producer: key "k&lt;i&gt;", value "v&lt;i&gt;",
 * one header "seq" = "&lt;i&gt;" (all UTF-8), default partitioner. Prints one
 * line per record, in send order: {@code k<i> <partition> <offset>}.
 *
 * Exit codes: 0 all acknowledged, 2 send error, 64 usage.
 */
public final class JavaProduce {
    private static final String TOOL = "JavaProduce";
    private static final String USAGE =
            "JavaProduce --bootstrap HOST:PORT[,...] --topic T --count N [--acks all|1|0] [--timeout-ms 60000]";

    private JavaProduce() {}

    public static void main(String[] args) throws InterruptedException {
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("bootstrap", "topic", "count", "acks", "timeout-ms"));
        String bootstrap = cli.required("bootstrap");
        String topic = cli.required("topic");
        int count = cli.requiredInt("count");
        String acks = cli.optional("acks", "all");
        long timeoutMs = cli.optionalLong("timeout-ms", 60_000L);

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "herald-java-produce");
        props.put(ProducerConfig.ACKS_CONFIG, acks);
        if (!acks.equals("all") && !acks.equals("-1")) {
            props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        }
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(Math.max(timeoutMs, 1000)));
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(Math.min(30_000, Math.max(timeoutMs, 1000))));
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(timeoutMs));

        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<RecordMetadata>> futures = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(topic, utf8("k" + i), utf8("v" + i));
                rec.headers().add("seq", utf8(Integer.toString(i)));
                futures.add(producer.send(rec));
            }
            producer.flush();
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < count; i++) {
                RecordMetadata md = futures.get(i).get();
                sb.append('k').append(i).append(' ').append(md.partition()).append(' ').append(md.offset())
                        .append('\n');
            }
            System.out.print(sb);
            System.out.flush();
        } catch (ExecutionException e) {
            Cli.fail(TOOL, 2, "send failed: " + e.getCause());
        } catch (org.apache.kafka.common.KafkaException e) {
            Cli.fail(TOOL, 2, "producer error: " + e);
        }
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
