package dev.herald.tools;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.utils.Utils;

/**
 * Prints fixed test vectors of the Java client's murmur2 (the hash behind the
 * default key partitioner), one line per key:
 * {@code <hex-key> <murmur2 as signed int> <toPositive(murmur2)>}; the empty key
 * is written as {@code -}. Partition for N partitions = third column % N.
 */
public final class Murmur2Vectors {
    private Murmur2Vectors() {}

    public static void main(String[] args) {
        List<byte[]> keys = new ArrayList<>();
        keys.add(new byte[0]);
        // 1..8 bytes: every tail length of murmur2's 4-byte blocks.
        keys.add(utf8("a"));
        keys.add(utf8("ab"));
        keys.add(utf8("abc"));
        keys.add(utf8("abcd"));
        keys.add(utf8("abcde"));
        keys.add(utf8("abcdef"));
        keys.add(utf8("abcdefg"));
        keys.add(utf8("abcdefgh"));
        keys.add(new byte[] {0});
        keys.add(new byte[] {(byte) 0xff});
        keys.add(new byte[] {0, 0, 0, 0});
        keys.add(new byte[] {(byte) 0x80, (byte) 0x81, (byte) 0x82, (byte) 0x83, (byte) 0x84, (byte) 0x85,
            (byte) 0x86});
        // UTF-8 strings.
        keys.add(utf8("truck_id_123"));
        keys.add(utf8("k0"));
        keys.add(utf8("k42"));
        keys.add(utf8("user-1000000"));
        keys.add(utf8("héllo wörld"));
        keys.add(utf8("日本語のキー"));
        // 64-byte keys.
        byte[] seq = new byte[64];
        byte[] ones = new byte[64];
        byte[] letters = new byte[64];
        for (int i = 0; i < 64; i++) {
            seq[i] = (byte) i;
            ones[i] = (byte) 0xff;
            letters[i] = (byte) ('A' + (i % 26));
        }
        keys.add(seq);
        keys.add(ones);
        keys.add(letters);

        StringBuilder sb = new StringBuilder();
        for (byte[] k : keys) {
            int h = Utils.murmur2(k);
            sb.append(k.length == 0 ? "-" : Json.hex(k)).append(' ').append(h).append(' ')
                    .append(Utils.toPositive(h)).append('\n');
        }
        System.out.print(sb);
        System.out.flush();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
