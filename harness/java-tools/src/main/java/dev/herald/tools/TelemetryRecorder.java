package dev.herald.tools;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricsReporter;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;
import org.apache.kafka.server.telemetry.ClientTelemetryExporter;
import org.apache.kafka.server.telemetry.ClientTelemetryExporterProvider;
import org.apache.kafka.server.telemetry.ClientTelemetryPayload;
import org.apache.kafka.shaded.io.opentelemetry.proto.common.v1.KeyValue;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.Metric;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.MetricsData;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.NumberDataPoint;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.ResourceMetrics;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.ScopeMetrics;

/**
 * A broker-side client telemetry plugin (KIP-714) for the harness: loaded by the
 * broker through {@code metric.reporters} (harness/kafka start --telemetry), it
 * makes the broker serve GetTelemetrySubscriptions and PushTelemetry, and appends
 * one JSON line per push it receives to the file named by
 * {@code herald.telemetry.file}: the client instance id (Kafka's text form), the
 * client id, whether the push was terminating, the content type, and every data
 * point of the OTLP {@code MetricsData} the broker decompressed, decoded with the
 * OpenTelemetry classes kafka-clients carries.
 */
public final class TelemetryRecorder implements MetricsReporter, ClientTelemetryExporterProvider {
    /** The broker config naming the output file. */
    public static final String FILE_CONFIG = "herald.telemetry.file";

    private OutputStream out;

    @Override
    public synchronized void configure(Map<String, ?> configs) {
        Object path = configs.get(FILE_CONFIG);
        if (path == null) {
            throw new IllegalArgumentException(FILE_CONFIG + " is required");
        }
        try {
            out = new FileOutputStream(path.toString(), true);
        } catch (IOException e) {
            throw new IllegalStateException("cannot open " + path, e);
        }
    }

    @Override
    public void init(List<KafkaMetric> metrics) {}

    @Override
    public void metricChange(KafkaMetric metric) {}

    @Override
    public void metricRemoval(KafkaMetric metric) {}

    @Override
    public synchronized void close() {
        try {
            if (out != null) {
                out.close();
            }
        } catch (IOException e) {
            // Nothing to do: the broker is stopping.
        }
    }

    @Override
    public ClientTelemetryExporter clientTelemetryExporter() {
        return (context, payload) -> record(context.authorizableRequestContext(), payload);
    }

    private synchronized void record(AuthorizableRequestContext ctx, ClientTelemetryPayload payload) {
        StringBuilder line = new StringBuilder(1024);
        line.append("{\"client_instance_id\":");
        Json.string(line, payload.clientInstanceId().toString());
        line.append(",\"client_id\":");
        Json.string(line, String.valueOf(ctx.clientId()));
        line.append(",\"terminating\":").append(payload.isTerminating());
        line.append(",\"content_type\":");
        Json.string(line, String.valueOf(payload.contentType()));
        line.append(",\"metrics\":[");
        try {
            MetricsData data = MetricsData.parseFrom(payload.data().duplicate());
            boolean first = true;
            for (ResourceMetrics rm : data.getResourceMetricsList()) {
                for (ScopeMetrics sm : rm.getScopeMetricsList()) {
                    for (Metric m : sm.getMetricsList()) {
                        List<NumberDataPoint> points;
                        String kind;
                        if (m.hasSum()) {
                            points = m.getSum().getDataPointsList();
                            kind = m.getSum().getAggregationTemporalityValue() == 1 ? "delta" : "cumulative";
                        } else if (m.hasGauge()) {
                            points = m.getGauge().getDataPointsList();
                            kind = "gauge";
                        } else {
                            continue;
                        }
                        for (NumberDataPoint p : points) {
                            if (!first) {
                                line.append(',');
                            }
                            first = false;
                            line.append("{\"name\":");
                            Json.string(line, m.getName());
                            line.append(",\"kind\":\"").append(kind).append('"');
                            double v = p.hasAsInt() ? p.getAsInt() : p.getAsDouble();
                            line.append(",\"value\":").append(Double.isFinite(v) ? Double.toString(v) : "null");
                            line.append(",\"attributes\":{");
                            boolean firstAttr = true;
                            for (KeyValue kv : p.getAttributesList()) {
                                if (!firstAttr) {
                                    line.append(',');
                                }
                                firstAttr = false;
                                Json.string(line, kv.getKey());
                                line.append(':');
                                Json.string(line, kv.getValue().getStringValue());
                            }
                            line.append("}}");
                        }
                    }
                }
            }
            line.append("],\"error\":null}\n");
        } catch (Exception e) {
            line.setLength(0);
            line.append("{\"client_instance_id\":");
            Json.string(line, payload.clientInstanceId().toString());
            line.append(",\"metrics\":[],\"error\":");
            Json.string(line, e.toString());
            line.append("}\n");
        }
        try {
            out.write(line.toString().getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException e) {
            throw new IllegalStateException("writing the telemetry record failed", e);
        }
    }
}
