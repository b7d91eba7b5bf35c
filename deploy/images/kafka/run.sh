#!/bin/sh
# Entry point with apache/kafka's environment contract: every KAFKA_<NAME> variable becomes the
# server property <name> ("_" -> ".", "__" -> "_", "___" -> "-"), except the JVM/launcher ones;
# with no KAFKA_* property at all, a single-node KRaft default config on localhost is used.
# CLUSTER_ID formats the storage once (--ignore-formatted on later starts).
set -eu
CONF=/opt/kafka/config/server.properties
: > "$CONF"
env | grep '^KAFKA_[A-Z0-9_]*=' | sort | while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_VERSION|KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_JMX_OPTS|KAFKA_JVM_PERFORMANCE_OPTS| \
    KAFKA_GC_LOG_OPTS|KAFKA_LOG4J_OPTS|KAFKA_LOG4J_ROOT_LOGLEVEL|KAFKA_LOG4J_LOGGERS| \
    KAFKA_TOOLS_LOG4J_LOGLEVEL|KAFKA_JMX_HOSTNAME|KAFKA_JMX_PORT) continue ;;
  esac
  key=$(printf '%s' "${name#KAFKA_}" | tr 'A-Z' 'a-z' \
        | sed -e 's/___/-/g' -e 's/__/\x01/g' -e 's/_/./g' -e 's/\x01/_/g')
  printf '%s=%s\n' "$key" "$value" >> "$CONF"
done
if [ ! -s "$CONF" ]; then
  cp /opt/kafka/config/default.properties "$CONF"
fi
LOG4J="-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties"
CP="/opt/kafka/libs/*"
java -Xmx256m -cp "$CP" "$LOG4J" kafka.tools.StorageTool format --ignore-formatted \
  -t "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$CONF"
# shellcheck disable=SC2086  # the *_OPTS variables are word lists, as in Kafka's own scripts
exec java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC} \
  -Djava.awt.headless=true ${KAFKA_OPTS:-} "$LOG4J" -cp "$CP" kafka.Kafka "$CONF"
