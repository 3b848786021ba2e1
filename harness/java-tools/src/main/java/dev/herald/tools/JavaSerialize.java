package dev.herald.tools;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.DoubleSerializer;
import org.apache.kafka.common.serialization.FloatSerializer;
import org.apache.kafka.common.serialization.IntegerSerializer;
import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.ShortSerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.serialization.UUIDSerializer;

/**
 * Reads lines {@code <type> <value>} from stdin and prints, one line per input
 * line, the hex of what kafka-clients' own serializer for that type writes (or
 * {@code null} when it returns null). The topic passed to the serializers is
 * {@code t}; none of them looks at it.
 *
 * <pre>
 * short|int|long V      decimal                    Short/Integer/LongSerializer
 * float|double V        Java's parseFloat/Double   Float/DoubleSerializer
 * float-bits|double-bits H  raw IEEE-754 bits in hex (Float.intBitsToFloat / Double.longBitsToDouble)
 * string H              the string's UTF-8 bytes in hex ('-' for empty)   StringSerializer
 * uuid U                UUID.fromString            UUIDSerializer
 * bytes H               hex ('-' for empty)        ByteArraySerializer
 * </pre>
 *
 * Exit codes: 0 success, 1 malformed input line, 64 usage.
 */
public final class JavaSerialize {
    private static final String TOOL = "JavaSerialize";
    private static final String TOPIC = "t";

    private JavaSerialize() {}

    public static void main(String[] args) throws IOException {
        if (args.length > 0) {
            if (args[0].equals("-h") || args[0].equals("--help")) {
                System.out.println("usage: JavaSerialize < lines of '<type> <value>'");
                System.exit(0);
            }
            Cli.fail(TOOL, Cli.EXIT_USAGE, "takes no arguments; reads '<type> <value>' lines on stdin");
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII), 1 << 16);
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.US_ASCII), 1 << 16);
        String line;
        long lineNo = 0;
        try (ShortSerializer shorts = new ShortSerializer();
                IntegerSerializer ints = new IntegerSerializer();
                LongSerializer longs = new LongSerializer();
                FloatSerializer floats = new FloatSerializer();
                DoubleSerializer doubles = new DoubleSerializer();
                StringSerializer strings = new StringSerializer();
                UUIDSerializer uuids = new UUIDSerializer();
                ByteArraySerializer bytes = new ByteArraySerializer()) {
            while ((line = in.readLine()) != null) {
                lineNo++;
                String s = line.trim();
                int sp = s.indexOf(' ');
                if (sp <= 0) {
                    out.flush();
                    Cli.fail(TOOL, 1, "line " + lineNo + ": expected '<type> <value>', got '" + line + "'");
                }
                String type = s.substring(0, sp);
                String v = s.substring(sp + 1).trim();
                byte[] result;
                try {
                    switch (type) {
                        case "short": result = shorts.serialize(TOPIC, Short.parseShort(v)); break;
                        case "int": result = ints.serialize(TOPIC, Integer.parseInt(v)); break;
                        case "long": result = longs.serialize(TOPIC, Long.parseLong(v)); break;
                        case "float": result = floats.serialize(TOPIC, Float.parseFloat(v)); break;
                        case "double": result = doubles.serialize(TOPIC, Double.parseDouble(v)); break;
                        case "float-bits":
                            result = floats.serialize(TOPIC, Float.intBitsToFloat(Integer.parseUnsignedInt(v, 16)));
                            break;
                        case "double-bits":
                            result = doubles.serialize(TOPIC, Double.longBitsToDouble(Long.parseUnsignedLong(v, 16)));
                            break;
                        case "string":
                            result = strings.serialize(TOPIC, new String(hexOrEmpty(v), StandardCharsets.UTF_8));
                            break;
                        case "uuid": result = uuids.serialize(TOPIC, UUID.fromString(v)); break;
                        case "bytes": result = bytes.serialize(TOPIC, hexOrEmpty(v)); break;
                        default: throw new IllegalArgumentException("unknown type '" + type + "'");
                    }
                } catch (IllegalArgumentException e) {
                    out.flush();
                    Cli.fail(TOOL, 1, "line " + lineNo + ": " + e.getMessage());
                    return;
                }
                out.write(result == null ? "null" : toHex(result));
                out.write('\n');
            }
        }
        out.flush();
    }

    private static byte[] hexOrEmpty(String v) {
        return v.equals("-") ? new byte[0] : JavaPartition.parseHex(v);
    }

    private static String toHex(byte[] b) {
        StringBuilder sb = new StringBuilder(b.length * 2);
        for (byte x : b) {
            sb.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
        }
        return sb.toString();
    }
}
