//! herald's built-in serializers against the Java client's own: for each value,
//! kafka-clients' `Short/Integer/Long/Float/Double/String/UUID/ByteArraySerializer`
//! (run by `dev.herald.tools.JavaSerialize` from harness/java-tools) and herald's
//! must write the same bytes.

mod support;

use herald::serialization::{
    BytesSerializer, DoubleSerializer, FloatSerializer, IntegerSerializer, LongSerializer,
    SerializationContext, Serializer, ShortSerializer, StringSerializer, UuidSerializer,
};

async fn ser<T: ?Sized, S: Serializer<T>>(s: &S, v: &T) -> String {
    let mut headers = Vec::new();
    let mut ctx = SerializationContext::new("t", false, &mut headers);
    match s.serialize(&mut ctx, v).await.expect("serialize") {
        Some(b) => hex(&b),
        None => "null".to_owned(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A number as text Java's `parseFloat`/`parseDouble` read back to the same value.
fn java_text(v: f64) -> String {
    if v.is_infinite() {
        (if v > 0.0 { "Infinity" } else { "-Infinity" }).to_owned()
    } else {
        format!("{v:e}")
    }
}

fn hex_or_dash(b: &[u8]) -> String {
    if b.is_empty() { "-".to_owned() } else { hex(b) }
}

#[tokio::test]
async fn builtin_serializers_write_what_kafka_clients_writes() {
    let mut rng = fastrand::Rng::with_seed(0x5e71_a112);
    // (line for JavaSerialize, herald's bytes)
    let mut cases: Vec<(String, String)> = Vec::new();

    let mut shorts = vec![0i16, 1, -1, i16::MIN, i16::MAX, 255, 256, -256];
    shorts.extend((0..200).map(|_| rng.i16(..)));
    for v in shorts {
        cases.push((format!("short {v}"), ser(&ShortSerializer, &v).await));
    }
    let mut ints = vec![0i32, 1, -1, i32::MIN, i32::MAX, 0x0102_0304, -0x0102_0304];
    ints.extend((0..300).map(|_| rng.i32(..)));
    for v in ints {
        cases.push((format!("int {v}"), ser(&IntegerSerializer, &v).await));
    }
    let mut longs = vec![0i64, 1, -1, i64::MIN, i64::MAX, 1 << 53, -(1 << 53) - 1];
    longs.extend((0..300).map(|_| rng.i64(..)));
    for v in longs {
        cases.push((format!("long {v}"), ser(&LongSerializer, &v).await));
    }

    // Floats by their text (Java parses it) and by raw bits (NaN payloads, signs).
    let floats = [
        0.0f32,
        -0.0,
        1.0,
        -1.5,
        f32::MIN,
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::EPSILON,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-45,         // the smallest subnormal
        1.1754942e-38, // the largest subnormal
        std::f32::consts::PI,
    ];
    for v in floats {
        cases.push((format!("float {}", java_text(f64::from(v))), ser(&FloatSerializer, &v).await));
    }
    cases.push(("float NaN".into(), ser(&FloatSerializer, &f32::NAN).await));
    let mut float_bits =
        vec![0x7fc0_0000u32, 0xffc0_0000, 0x7fc0_0001, 0x7fa0_0000, 0xff80_0001, 0x0000_0001, 0x8000_0000];
    float_bits.extend((0..300).map(|_| rng.u32(..)));
    for bits in float_bits {
        // Java's intBitsToFloat may quiet a signalling NaN on its way through a
        // register; compare only what Java can hand to its serializer unchanged.
        let v = f32::from_bits(bits);
        if v.is_nan() && bits & 0x0040_0000 == 0 {
            continue;
        }
        cases.push((format!("float-bits {bits:08x}"), ser(&FloatSerializer, &v).await));
    }
    let doubles = [
        0.0f64,
        -0.0,
        1.0,
        -2.5,
        f64::MIN,
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        f64::INFINITY,
        f64::NEG_INFINITY,
        5e-324,                 // the smallest subnormal
        2.225073858507201e-308, // the largest subnormal
        0.1,
        std::f64::consts::E,
    ];
    for v in doubles {
        cases.push((format!("double {}", java_text(v)), ser(&DoubleSerializer, &v).await));
    }
    cases.push(("double NaN".into(), ser(&DoubleSerializer, &f64::NAN).await));
    let mut double_bits = vec![
        0x7ff8_0000_0000_0000u64,
        0xfff8_0000_0000_0000,
        0x7ff0_0000_0000_0001,
        0xfff0_0000_dead_beef,
        1,
        1 << 63,
    ];
    double_bits.extend((0..300).map(|_| rng.u64(..)));
    for bits in double_bits {
        // Every NaN, signalling or not, comes out canonical from doubleToLongBits.
        cases.push((format!("double-bits {bits:016x}"), ser(&DoubleSerializer, &f64::from_bits(bits)).await));
    }

    let mut strings: Vec<String> =
        ["", "a", "truck_id_123", "grüße", "日本語", "emoji 🚚", "tab\there", "nul\0byte", " lead"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    strings.extend((0..100).map(|_| (0..rng.usize(0..40)).map(|_| rng.char(..)).collect::<String>()));
    for s in &strings {
        cases.push((
            format!("string {}", hex_or_dash(s.as_bytes())),
            ser(&StringSerializer, s.as_str()).await,
        ));
    }

    let mut uuids = vec![
        uuid::Uuid::nil(),
        uuid::Uuid::max(),
        uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
    ];
    uuids.extend((0..100).map(|_| uuid::Uuid::from_u128(rng.u128(..))));
    for u in uuids {
        // Java parses any case; herald writes lowercase, as Java's toString does.
        cases.push((
            format!("uuid {}", u.hyphenated().to_string().to_uppercase()),
            ser(&UuidSerializer, &u).await,
        ));
    }

    let mut byte_strings: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0xff; 3]];
    byte_strings.extend((0..50).map(|_| (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect()));
    for b in &byte_strings {
        cases.push((format!("bytes {}", hex_or_dash(b)), ser(&BytesSerializer, b.as_slice()).await));
    }

    let input: String = cases.iter().map(|(line, _)| format!("{line}\n")).collect();
    let out = support::java("dev.herald.tools.JavaSerialize", &[], Some(input.into_bytes())).await;
    let java: Vec<&str> = out.lines().collect();
    assert_eq!(java.len(), cases.len(), "one answer per line");
    let mut mismatches = Vec::new();
    for ((line, herald), java) in cases.iter().zip(&java) {
        if herald != java {
            mismatches.push(format!("{line}: herald {herald}, Java {java}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    assert!(cases.len() > 1500, "{} cases", cases.len());
}
