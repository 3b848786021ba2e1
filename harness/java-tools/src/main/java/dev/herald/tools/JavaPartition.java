package dev.herald.tools;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

/**
 * Reads lines {@code <hex-key> <numPartitions>} from stdin (an empty key is the
 * literal {@code -}) and prints, one line per input line, the partition that
 * the Java producer's own default partitioner code picks for that key:
 * {@link BuiltInPartitioner#partitionForKey(byte[], int)}, i.e.
 * {@code toPositive(murmur2(key)) % numPartitions}.
 *
 * Exit codes: 0 success, 1 malformed input line, 64 usage.
 */
public final class JavaPartition {
    private static final String TOOL = "JavaPartition";

    private JavaPartition() {}

    public static void main(String[] args) throws IOException {
        if (args.length > 0) {
            if (args[0].equals("-h") || args[0].equals("--help")) {
                System.out.println("usage: JavaPartition < lines of '<hex-key>|- <numPartitions>'");
                System.exit(0);
            }
            Cli.fail(TOOL, Cli.EXIT_USAGE, "takes no arguments; reads '<hex-key> <numPartitions>' lines on stdin");
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII), 1 << 16);
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.US_ASCII), 1 << 16);
        String line;
        long lineNo = 0;
        while ((line = in.readLine()) != null) {
            lineNo++;
            String s = line.trim();
            int sp = s.indexOf(' ');
            if (sp <= 0) {
                out.flush();
                Cli.fail(TOOL, 1, "line " + lineNo + ": expected '<hex-key> <numPartitions>', got '" + line + "'");
            }
            String hexKey = s.substring(0, sp);
            String nStr = s.substring(sp + 1).trim();
            int n;
            byte[] key;
            try {
                n = Integer.parseInt(nStr);
                key = hexKey.equals("-") ? new byte[0] : parseHex(hexKey);
            } catch (IllegalArgumentException e) {
                out.flush();
                Cli.fail(TOOL, 1, "line " + lineNo + ": " + e.getMessage());
                return;
            }
            if (n <= 0) {
                out.flush();
                Cli.fail(TOOL, 1, "line " + lineNo + ": numPartitions must be > 0, got " + n);
            }
            out.write(Integer.toString(BuiltInPartitioner.partitionForKey(key, n)));
            out.write('\n');
        }
        out.flush();
    }

    static byte[] parseHex(String hex) {
        if (hex.length() % 2 != 0) {
            throw new IllegalArgumentException("odd-length hex key '" + hex + "'");
        }
        byte[] b = new byte[hex.length() / 2];
        for (int i = 0; i < b.length; i++) {
            int hi = Character.digit(hex.charAt(2 * i), 16);
            int lo = Character.digit(hex.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) {
                throw new IllegalArgumentException("bad hex key '" + hex + "'");
            }
            b[i] = (byte) ((hi << 4) | lo);
        }
        return b;
    }
}
