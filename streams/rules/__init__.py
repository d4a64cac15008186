"""The decision logic: pure, typed functions of (event, policy, now). No Faust, Kafka or Prometheus."""
