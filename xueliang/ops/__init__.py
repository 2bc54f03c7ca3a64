"""Operations helpers shared by every stage: bus consumer-lag metrics, fleet inventory
metrics, and a launcher for a real Prometheus server (tests and the capacity bench)."""
