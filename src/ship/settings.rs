//! The librdkafka settings a user may pass (`--kafka-opt`, `[ship.kafka]`) and the ones glint
//! fixes: plain text checks, so `glint doctor` and a glint built without the `kafka` feature
//! check a config the same way `glint ship` does.

/// librdkafka settings glint fixes, because the no-loss and no-silent-duplicate promises rest
/// on them.
pub const FIXED_SETTINGS: [(&str, &str); 3] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("message.timeout.ms", "0"),
];

/// Splits `key=value` (a `--kafka-opt`).
pub fn parse_kafka_opt(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "--kafka-opt {text:?}: expected KEY=VALUE, a librdkafka setting such as security.protocol=ssl"
        )),
    }
}

/// Refuses user settings that would change a fixed setting or name the brokers a second way.
pub fn check_user_settings(user: &[(String, String)]) -> Result<(), String> {
    for (key, value) in user {
        if let Some((_, fixed)) = FIXED_SETTINGS.iter().find(|(k, _)| k == key) {
            if value != fixed {
                return Err(format!(
                    "kafka setting {key}={value}: glint ship fixes {key}={fixed} (no record may be lost or silently duplicated)"
                ));
            }
        }
        if key == "bootstrap.servers" {
            return Err(format!(
                "kafka setting {key}: give the brokers with --brokers (or `brokers` in [ship])"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_settings_and_brokers_cannot_be_overridden() {
        let s = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(check_user_settings(&s("linger.ms", "5")).is_ok());
        assert!(check_user_settings(&s("acks", "all")).is_ok());
        let e = check_user_settings(&s("acks", "1")).unwrap_err();
        assert!(e.contains("glint ship fixes acks=all"), "{e}");
        let e = check_user_settings(&s("enable.idempotence", "false")).unwrap_err();
        assert!(e.contains("enable.idempotence=true"), "{e}");
        let e = check_user_settings(&s("bootstrap.servers", "k:9092")).unwrap_err();
        assert!(e.contains("--brokers"), "{e}");
        assert_eq!(
            parse_kafka_opt("a.b= c=d").unwrap(),
            ("a.b".into(), " c=d".into())
        );
        assert!(parse_kafka_opt("novalue").is_err());
        assert!(parse_kafka_opt("=x").is_err());
    }
}
