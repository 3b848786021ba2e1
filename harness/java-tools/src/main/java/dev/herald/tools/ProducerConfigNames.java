package dev.herald.tools;

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.ClientUtils;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Partitioner;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.types.Password;
import org.apache.kafka.common.serialization.Serializer;

/**
 * The Java producer's properties, as kafka-clients itself knows them, for
 * herald's {@code herald/tests/producer_config_java.rs}. Three modes:
 *
 * <ul>
 *   <li>no arguments: every name of {@link ProducerConfig#configNames()},
 *       sorted, one per line: {@code name<TAB>type<TAB>default}, where type is
 *       the {@link ConfigDef.Type} name and default the parsed default as a
 *       {@code .properties} value would spell it (a class by its name, a list
 *       comma-separated, a password as {@code [hidden]}, null as empty), or
 *       {@code <none>} when the property has no default (it is required).</li>
 *   <li>{@code --check}: reads {@code name<TAB>value} lines on stdin and prints,
 *       per line, {@code ok} or {@code invalid<TAB>message}: whether a producer
 *       config of {@code bootstrap.servers=127.0.0.1:9092}, ByteArraySerializer
 *       for keys and values, and that one property is accepted by
 *       {@code new ProducerConfig(...)} (ConfigDef's parsing and validators, and
 *       its cross-checks such as idempotence) and by the checks
 *       {@code KafkaProducer}'s constructor adds: bootstrap addresses, serializer
 *       and partitioner classes of the right interface, and an explicit
 *       {@code delivery.timeout.ms} of at least {@code linger.ms +
 *       request.timeout.ms}. Classes named in lists (interceptors, metrics
 *       reporters) are not loaded.</li>
 *   <li>{@code --load FILE}: reads FILE with {@link Properties#load(InputStream)}
 *       (ISO 8859-1) and prints its entries sorted by key, {@code key<TAB>value},
 *       with backslash, tab, CR and LF escaped as {@code \\ \t \r \n} and every
 *       other character outside printable ASCII as {@code \}{@code uXXXX}. With
 *       {@code --build BOOTSTRAP} it then builds a {@code KafkaProducer} from
 *       those properties (bootstrap.servers replaced), closes it, and prints
 *       {@code built}.</li>
 * </ul>
 *
 * Exit codes: 0 success, 1 the producer could not be built (--build), 64 usage.
 */
public final class ProducerConfigNames {
    private static final String TOOL = "ProducerConfigNames";
    private static final String USAGE = "ProducerConfigNames [--check | --load FILE [--build BOOTSTRAP]]";

    private ProducerConfigNames() {}

    public static void main(String[] args) throws IOException {
        if (args.length == 0) {
            list();
        } else if (args[0].equals("-h") || args[0].equals("--help")) {
            System.out.println("usage: " + USAGE);
        } else if (args.length == 1 && args[0].equals("--check")) {
            check();
        } else if (args.length == 2 && args[0].equals("--load")) {
            load(args[1], null);
        } else if (args.length == 4 && args[0].equals("--load") && args[2].equals("--build")) {
            load(args[1], args[3]);
        } else {
            Cli.fail(TOOL, Cli.EXIT_USAGE, "usage: " + USAGE);
        }
    }

    private static void list() {
        Map<String, ConfigDef.ConfigKey> keys = ProducerConfig.configDef().configKeys();
        Map<String, Object> defaults = ProducerConfig.configDef().defaultValues();
        StringBuilder out = new StringBuilder();
        for (String name : new TreeMap<>(keys).keySet()) {
            if (!ProducerConfig.configNames().contains(name)) {
                continue;
            }
            ConfigDef.ConfigKey key = keys.get(name);
            String dflt = key.hasDefault() ? render(defaults.get(name)) : "<none>";
            out.append(name).append('\t').append(key.type.name()).append('\t').append(dflt).append('\n');
        }
        for (String name : ProducerConfig.configNames()) {
            if (!keys.containsKey(name)) {
                out.append(name).append("\tUNKNOWN\t<none>\n");
            }
        }
        System.out.print(out);
    }

    private static void check() throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = in.readLine()) != null) {
            int tab = line.indexOf('\t');
            if (tab <= 0) {
                System.out.print(out);
                Cli.fail(TOOL, Cli.EXIT_USAGE, "expected name<TAB>value, got '" + line + "'");
            }
            String problem = problem(line.substring(0, tab), line.substring(tab + 1));
            out.append(problem == null ? "ok" : "invalid\t" + oneLine(problem)).append('\n');
        }
        System.out.print(out);
    }

    /** Why Java refuses a producer config with {@code name=value}, or null. */
    private static String problem(String name, String value) {
        Map<String, Object> props = new HashMap<>();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:9092");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, "org.apache.kafka.common.serialization.ByteArraySerializer");
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, "org.apache.kafka.common.serialization.ByteArraySerializer");
        props.put(name, value);
        try {
            ProducerConfig config = new ProducerConfig(props);
            ClientUtils.parseAndValidateAddresses(config);
            for (String s : List.of(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG)) {
                if (!Serializer.class.isAssignableFrom(config.getClass(s))) {
                    return s + ": " + config.getClass(s).getName() + " is not a Serializer";
                }
            }
            Class<?> partitioner = config.getClass(ProducerConfig.PARTITIONER_CLASS_CONFIG);
            if (partitioner != null && !Partitioner.class.isAssignableFrom(partitioner)) {
                return "partitioner.class: " + partitioner.getName() + " is not a Partitioner";
            }
            long least = config.getLong(ProducerConfig.LINGER_MS_CONFIG)
                    + config.getInt(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG);
            if (config.originals().containsKey(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG)
                    && config.getInt(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG) < Math.min(least, Integer.MAX_VALUE)) {
                return "delivery.timeout.ms should be equal to or larger than linger.ms + request.timeout.ms";
            }
            return null;
        } catch (KafkaException | IllegalArgumentException e) {
            return e.getMessage() == null ? e.toString() : e.getMessage();
        }
    }

    private static void load(String file, String bootstrap) throws IOException {
        Properties props = new Properties();
        try (InputStream in = new FileInputStream(file)) {
            props.load(in);
        }
        StringBuilder out = new StringBuilder();
        for (String key : new TreeMap<>(toMap(props)).keySet()) {
            out.append(escape(key)).append('\t').append(escape(props.getProperty(key))).append('\n');
        }
        System.out.print(out);
        System.out.flush();
        if (bootstrap != null) {
            props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            try (KafkaProducer<Object, Object> producer = new KafkaProducer<>(props)) {
                producer.close(Duration.ZERO);
            } catch (KafkaException e) {
                Cli.fail(TOOL, 1, "KafkaProducer refused the config: " + e + (e.getCause() == null ? "" : " caused by " + e.getCause()));
            }
            System.out.println("built");
        }
    }

    private static Map<String, String> toMap(Properties props) {
        Map<String, String> m = new HashMap<>();
        for (String k : props.stringPropertyNames()) {
            m.put(k, props.getProperty(k));
        }
        return m;
    }

    private static String render(Object v) {
        if (v == null) {
            return "";
        }
        if (v instanceof Class<?> c) {
            return c.getName();
        }
        if (v instanceof List<?> l) {
            StringBuilder s = new StringBuilder();
            for (Object o : l) {
                if (s.length() > 0) {
                    s.append(',');
                }
                s.append(render(o));
            }
            return s.toString();
        }
        if (v instanceof Password) {
            return "[hidden]";
        }
        return escape(v.toString());
    }

    /** Backslash, tab, CR, LF as escapes; anything else outside printable ASCII as a u-escape. */
    static String escape(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\' -> b.append("\\\\");
                case '\t' -> b.append("\\t");
                case '\r' -> b.append("\\r");
                case '\n' -> b.append("\\n");
                default -> {
                    if (c >= 0x20 && c < 0x7f) {
                        b.append(c);
                    } else {
                        b.append(String.format("\\u%04x", (int) c));
                    }
                }
            }
        }
        return b.toString();
    }

    private static String oneLine(String s) {
        return s.replace('\n', ' ').replace('\r', ' ').replace('\t', ' ');
    }
}
