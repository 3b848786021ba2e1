package dev.herald.bench;

/**
 * Log-linear latency histogram in microseconds: 128 sub-buckets per power of
 * two (under 0.8 % relative error), the same layout and the same quantile rule
 * as the Rust peers' {@code bench/peers/common/bench.rs} and the Go peer, so
 * every peer reports its percentiles the same way. Not thread-safe: the caller
 * serialises {@link #record}.
 */
final class LatencyHistogram {
    private static final int SUB_BITS = 7;
    private static final long SUB = 1L << SUB_BITS;

    private final long[] counts = new long[(int) (64 * SUB)];
    private long total;
    private double sumUs;
    private long maxUs;

    static int index(long v) {
        if (v < SUB) {
            return (int) v;
        }
        int msb = 63 - Long.numberOfLeadingZeros(v); // >= SUB_BITS
        int shift = msb - SUB_BITS;
        long sub = (v >>> shift) - SUB; // 0..SUB
        return (int) (((long) (shift + 1) << SUB_BITS) + sub);
    }

    /** The midpoint of the values of bucket {@code i}. */
    static double value(int i) {
        if (i < SUB) {
            return i;
        }
        long shift = (i >>> SUB_BITS) - 1;
        long sub = i & (SUB - 1);
        long lo = (SUB + sub) << shift;
        return lo + ((double) (1L << shift) - 1.0) / 2.0;
    }

    void recordNanos(long nanos) {
        long us = Math.max(0, nanos / 1000);
        counts[index(us)]++;
        total++;
        sumUs += us;
        if (us > maxUs) {
            maxUs = us;
        }
    }

    long count() {
        return total;
    }

    /** Percentile {@code q} (0..1) in milliseconds. */
    double quantileMs(double q) {
        if (total == 0) {
            return 0;
        }
        long rank = Math.min(total, Math.max(1, (long) Math.ceil(q * total)));
        long seen = 0;
        for (int i = 0; i < counts.length; i++) {
            seen += counts[i];
            if (seen >= rank) {
                return Math.min(value(i), (double) maxUs) / 1000.0;
            }
        }
        return maxUs / 1000.0;
    }

    double avgMs() {
        return total == 0 ? 0 : sumUs / total / 1000.0;
    }

    double maxMs() {
        return maxUs / 1000.0;
    }
}
