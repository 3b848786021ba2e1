package dev.herald.tools;

import java.util.Base64;

/** Hand-written JSON output helpers (no JSON library on the classpath). */
final class Json {
    private static final Base64.Encoder B64 = Base64.getEncoder();
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private Json() {}

    /** Appends {@code s} as a JSON string literal (with quotes). */
    static void string(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                default:
                    if (c < 0x20 || c == 0x2028 || c == 0x2029) {
                        out.append("\\u").append(HEX[(c >> 12) & 0xf]).append(HEX[(c >> 8) & 0xf])
                                .append(HEX[(c >> 4) & 0xf]).append(HEX[c & 0xf]);
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }

    /** Appends base64 (standard alphabet, padded) of {@code bytes} as a JSON string, or null. */
    static void base64OrNull(StringBuilder out, byte[] bytes) {
        if (bytes == null) {
            out.append("null");
        } else {
            out.append('"').append(B64.encodeToString(bytes)).append('"');
        }
    }

    static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            sb.append(HEX[(b >> 4) & 0xf]).append(HEX[b & 0xf]);
        }
        return sb.toString();
    }
}
