package dev.herald.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.Message;
import com.google.protobuf.TextFormat;
import io.apicurio.registry.serde.SerdeConfig;
import io.apicurio.registry.serde.avro.AvroKafkaDeserializer;
import io.apicurio.registry.serde.config.IdOption;
import io.apicurio.registry.serde.jsonschema.JsonSchemaKafkaDeserializer;
import io.apicurio.registry.serde.protobuf.ProtobufKafkaDeserializer;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.apache.avro.generic.GenericData;
import org.apache.kafka.common.serialization.Deserializer;

/**
 * Reads payloads in the Confluent Schema Registry wire format (magic byte 0, a
 * 4-byte big-endian schema id, the data), one base64 line each on stdin, and
 * deserializes them with Apicurio Registry's own Kafka deserializers
 * ({@code AvroKafkaDeserializer}, {@code ProtobufKafkaDeserializer},
 * {@code JsonSchemaKafkaDeserializer}) in their Confluent-compatible mode:
 * {@code apicurio.registry.headers.enabled=false} (the id is in the payload, not in
 * record headers), {@code apicurio.registry.as-confluent=true} (a 4-byte id, Apicurio's
 * {@code Legacy4ByteIdHandler}, not its default 8-byte one) and
 * {@code apicurio.registry.use-id=contentId} (the ids Apicurio's Confluent API
 * hands out are content ids). The JSON Schema deserializer also validates each
 * value against its schema ({@code apicurio.registry.serde.validation-enabled}).
 *
 * <p>Prints one JSON line per input line: {@code {"value": V}} with the decoded
 * value as JSON (Avro's {@code GenericData.toString}, the JSON Schema
 * deserializer's {@code JsonNode}), {@code {"text": "..."}} with a Protobuf
 * message in protobuf's text format, or {@code {"error": "..."}} when the
 * deserializer throws.
 *
 * <pre>
 * ApicurioDeserialize --registry URL --format avro|protobuf|json-schema --topic T [--key true]
 * </pre>
 *
 * {@code --registry} is Apicurio's Confluent-compatible URL ({@code .../apis/ccompat/v7},
 * what herald registered with) or its own API ({@code .../apis/registry/v2}).
 * Exit codes: 0 success (whatever each payload gave), 1 bad input line, 64 usage.
 */
public final class ApicurioDeserialize {
    private static final String TOOL = "ApicurioDeserialize";
    private static final String USAGE =
            "ApicurioDeserialize --registry URL --format avro|protobuf|json-schema --topic T [--key true] < base64 lines";

    private ApicurioDeserialize() {}

    public static void main(String[] args) throws IOException {
        Cli cli = Cli.parse(TOOL, USAGE, args, Set.of("registry", "format", "topic", "key"));
        String registry = apicurioApi(cli.required("registry"));
        String format = cli.required("format");
        String topic = cli.required("topic");
        boolean isKey = Boolean.parseBoolean(cli.optional("key", "false"));

        Map<String, Object> config = new HashMap<>();
        config.put(SerdeConfig.REGISTRY_URL, registry);
        config.put(SerdeConfig.ENABLE_HEADERS, "false");
        config.put(SerdeConfig.ENABLE_CONFLUENT_ID_HANDLER, "true");
        config.put(SerdeConfig.USE_ID, IdOption.contentId.name());
        config.put(SerdeConfig.VALIDATION_ENABLED, "true");

        Deserializer<?> deserializer;
        switch (format) {
            case "avro": deserializer = new AvroKafkaDeserializer<>(); break;
            case "protobuf": deserializer = new ProtobufKafkaDeserializer<>(); break;
            case "json-schema": deserializer = new JsonSchemaKafkaDeserializer<>(); break;
            default:
                Cli.fail(TOOL, Cli.EXIT_USAGE, "unknown --format '" + format + "' (avro, protobuf, json-schema)");
                return;
        }
        deserializer.configure(config, isKey);

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        String line;
        long lineNo = 0;
        try (Deserializer<?> d = deserializer) {
            while ((line = in.readLine()) != null) {
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                byte[] payload;
                try {
                    payload = Base64.getDecoder().decode(line.trim());
                } catch (IllegalArgumentException e) {
                    out.flush();
                    Cli.fail(TOOL, 1, "line " + lineNo + ": not base64: " + e.getMessage());
                    return;
                }
                StringBuilder sb = new StringBuilder();
                try {
                    describe(sb, d.deserialize(topic, payload));
                } catch (RuntimeException e) {
                    sb.setLength(0);
                    sb.append("{\"error\":");
                    Json.string(sb, causes(e));
                    sb.append('}');
                }
                out.write(sb.toString());
                out.write('\n');
            }
        }
        out.flush();
    }

    private static void describe(StringBuilder sb, Object value) {
        if (value instanceof Message) {
            sb.append("{\"text\":");
            Json.string(sb, TextFormat.printer().shortDebugString((Message) value));
            sb.append('}');
        } else if (value instanceof JsonNode) {
            sb.append("{\"value\":").append(value).append('}');
        } else {
            sb.append("{\"value\":").append(GenericData.get().toString(value)).append('}');
        }
    }

    /** The exception's class and message, then each cause's. */
    private static String causes(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(t.getClass().getName()).append(": ").append(t.getMessage());
        }
        return sb.toString();
    }

    /** Apicurio's own API (what its serdes call) for its Confluent-compatible URL. */
    private static String apicurioApi(String url) {
        String u = url.replaceAll("/+$", "");
        return u.replaceFirst("/apis/ccompat/v[0-9]+$", "/apis/registry/v2");
    }
}
