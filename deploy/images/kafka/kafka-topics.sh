#!/bin/sh
# Kafka's topic tool (org.apache.kafka.tools.TopicCommand), as bin/kafka-topics.sh of a release.
exec java -Xmx256m -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
  -cp "/opt/kafka/libs/*" org.apache.kafka.tools.TopicCommand "$@"
