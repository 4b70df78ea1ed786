// Java client (kafka-clients 3.9) scenarios against Sluice, run by test_java.py.
// Usage: java SluiceCompat <produce-consume|admin> <bootstrap> [args]
// Exits 0 on success; prints what it checked; any failure throws (non-zero exit).

import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.serialization.*;
import org.apache.kafka.common.config.ConfigResource;

public class SluiceCompat {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String bootstrap = args[1];
        switch (mode) {
            case "produce-consume" -> produceConsume(bootstrap, args[2], Integer.parseInt(args[3]));
            case "admin" -> admin(bootstrap, args[2]);
            case "versions" -> versions(bootstrap);
            case "configs" -> configs(bootstrap, args[2]);
            case "produce-paced" -> producePaced(bootstrap, args[2], Integer.parseInt(args[3]));
            case "partitions" -> partitions(bootstrap, args[2]);
            case "leader-epoch" -> leaderEpoch(bootstrap, args[2]);
            case "group-consumer-protocol" -> groupConsumerProtocol(bootstrap, args[2]);
            default -> throw new IllegalArgumentException(mode);
        }
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    // A producer with DEFAULT settings (idempotence on, acks=all since Kafka 3.0) sends `n`
    // keyed records per compression type; a consumer in a group reads them back with commits:
    // every record exactly once, per-partition order, keys and values intact.
    static void produceConsume(String bootstrap, String topic, int n) throws Exception {
        int partitions = 3;
        try (Admin a = admin(bootstrap)) {
            a.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        String[] codecs = {"none", "gzip", "snappy", "lz4", "zstd"};
        int total = 0;
        for (String codec : codecs) {
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                List<Future<RecordMetadata>> futures = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    String value = codec + ":" + i + ":" + "v".repeat(i % 100);
                    var headers = List.<org.apache.kafka.common.header.Header>of(
                        new org.apache.kafka.common.header.internals.RecordHeader("seq", Integer.toString(i).getBytes()));
                    futures.add(producer.send(new ProducerRecord<>(topic, null, "key-" + (i % 500), value, headers)));
                }
                producer.flush();
                for (Future<RecordMetadata> f : futures) f.get(60, TimeUnit.SECONDS);
            }
            total += n;
            System.out.println("produced " + n + " records with compression " + codec);
        }
        // A consumer in a group (classic protocol, the 3.9 client's default): subscribe, read
        // from the beginning (auto.offset.reset=earliest), commitSync after every poll.
        String group = topic + "-group";
        Map<String, Integer> seen = new HashMap<>();
        Map<String, Integer> keyPartition = new HashMap<>();
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
        Map<TopicPartition, Long> end;
        try (KafkaConsumer<String, String> consumer = groupConsumer(bootstrap, group, "classic")) {
            consumer.subscribe(List.of(topic));
            Map<String, Integer> lastByCodecPartition = new HashMap<>();
            long deadline = System.currentTimeMillis() + 120_000;
            int got = 0;
            while (got < total) {
                check(System.currentTimeMillis() < deadline, "consumed only " + got + " of " + total);
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<String, String> r : records) {
                    String[] parts = r.value().split(":", 3);
                    int i = Integer.parseInt(parts[1]);
                    check(r.key().equals("key-" + (i % 500)), "key of " + r.value());
                    check(parts[2].equals("v".repeat(i % 100)), "value of " + r.value());
                    var seq = r.headers().lastHeader("seq");
                    check(seq != null && new String(seq.value()).equals(Integer.toString(i)), "header of " + r.value());
                    String id = parts[0] + ":" + i;
                    check(seen.put(id, r.partition()) == null, "duplicate " + id);
                    Integer kp = keyPartition.putIfAbsent(r.key(), r.partition());
                    check(kp == null || kp == r.partition(), "key " + r.key() + " in two partitions");
                    String cp = parts[0] + "/" + r.partition();
                    Integer last = lastByCodecPartition.put(cp, i);
                    check(last == null || last < i, "order in " + cp + ": " + i + " after " + last);
                    got++;
                }
                if (!records.isEmpty()) consumer.commitSync();
            }
            check(seen.size() == total, "distinct records " + seen.size() + " != " + total);
            end = consumer.endOffsets(tps);
            long sum = end.values().stream().mapToLong(Long::longValue).sum();
            check(sum == total, "end offsets sum " + sum + " != " + total + " (duplicates in the log?)");
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(new HashSet<>(tps));
            for (TopicPartition tp : tps) {
                check(committed.get(tp) != null && committed.get(tp).offset() == end.get(tp),
                      "committed " + committed.get(tp) + " != end " + end.get(tp) + " for " + tp);
            }
        }
        System.out.println("consumed " + total + " records exactly once, in order per partition, committed to the end");
        // The group resumes at its commits: a new member reads nothing.
        try (KafkaConsumer<String, String> consumer = groupConsumer(bootstrap, group, "classic")) {
            consumer.subscribe(List.of(topic));
            long until = System.currentTimeMillis() + 8_000;
            while (System.currentTimeMillis() < until) {
                int n2 = consumer.poll(Duration.ofMillis(500)).count();
                check(n2 == 0, "a member of the committed group read " + n2 + " records again");
            }
            check(consumer.assignment().size() == partitions, "assignment " + consumer.assignment());
        }
        // The group as the AdminClient sees it, then deleted.
        try (Admin a = admin(bootstrap)) {
            var offsets = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            for (TopicPartition tp : tps) {
                check(offsets.get(tp).offset() == end.get(tp), "admin offsets " + offsets);
            }
            ConsumerGroupDescription d = a.describeConsumerGroups(List.of(group)).describedGroups().get(group).get(30, TimeUnit.SECONDS);
            check(d.state() == ConsumerGroupState.EMPTY && d.members().isEmpty(), "described " + d);
            check(a.listConsumerGroups().all().get(30, TimeUnit.SECONDS).stream().anyMatch(g -> g.groupId().equals(group)), "listed");
            a.deleteConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS);
            check(a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS).isEmpty(),
                  "offsets after delete");
        }
        System.out.println("group " + group + " listed, described, offsets listed, deleted");
    }

    // KIP-848 with the reference client: two consumers with group.protocol=consumer share a
    // 4-partition topic (the broker assigns, two partitions each), read every record once with
    // commitSync; the AdminClient describes a CONSUMER-type group of two; when one leaves, the
    // other is given all four partitions; the commits end at the log end.
    static void groupConsumerProtocol(String bootstrap, String topic) throws Exception {
        int partitions = 4, total = 2000;
        try (Admin a = admin(bootstrap)) {
            a.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < total; i++) producer.send(new ProducerRecord<>(topic, "key-" + i, "v" + i));
            producer.flush();
        }
        String group = topic + "-group";
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
        Set<String> seen = new HashSet<>();
        KafkaConsumer<String, String> c1 = groupConsumer(bootstrap, group, "consumer");
        KafkaConsumer<String, String> c2 = groupConsumer(bootstrap, group, "consumer");
        try {
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 120_000;
            boolean balanced = false;
            while (seen.size() < total || !balanced) {
                check(System.currentTimeMillis() < deadline,
                      "read " + seen.size() + " of " + total + "; assignments " + c1.assignment() + " " + c2.assignment());
                for (KafkaConsumer<String, String> c : List.of(c1, c2)) {
                    ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(200));
                    for (ConsumerRecord<String, String> r : records) {
                        check(seen.add(r.value()), "duplicate " + r.value() + " at " + r.partition() + "/" + r.offset());
                    }
                    if (!records.isEmpty()) c.commitSync();
                }
                Set<TopicPartition> both = new HashSet<>(c1.assignment());
                both.addAll(c2.assignment());
                balanced = c1.assignment().size() == 2 && c2.assignment().size() == 2 && both.size() == partitions;
            }
            System.out.println("two members, two partitions each, read " + seen.size() + " records once");
            try (Admin a = admin(bootstrap)) {
                ConsumerGroupDescription d = a.describeConsumerGroups(List.of(group)).describedGroups().get(group)
                    .get(30, TimeUnit.SECONDS);
                check(d.type() == GroupType.CONSUMER, "group type " + d.type());
                check(d.members().size() == 2 && d.state() == ConsumerGroupState.STABLE, "described " + d);
                System.out.println("described a " + d.type() + " group, " + d.state() + ", " + d.members().size() + " members");
            }
            c1.close();
            deadline = System.currentTimeMillis() + 60_000;
            while (c2.assignment().size() != partitions) {
                check(System.currentTimeMillis() < deadline, "after a leave: assignment " + c2.assignment());
                check(c2.poll(Duration.ofMillis(200)).isEmpty(), "records again after the leave");
            }
            Map<TopicPartition, Long> end = c2.endOffsets(tps);
            Map<TopicPartition, OffsetAndMetadata> committed = c2.committed(new HashSet<>(tps));
            for (TopicPartition tp : tps) {
                check(committed.get(tp) != null && committed.get(tp).offset() == end.get(tp),
                      "committed " + committed.get(tp) + " != end " + end.get(tp) + " for " + tp);
            }
            System.out.println("after one member left the other holds all " + partitions + " partitions; commits at the end");
        } finally {
            c1.close();
            c2.close();
        }
    }

    // A group member with manual commits from the beginning; `protocol` is group.protocol
    // ("classic", the 3.9 client's default, or "consumer" for KIP-848).
    static KafkaConsumer<String, String> groupConsumer(String bootstrap, String group, String protocol) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(c);
    }

    // A DEFAULT producer (idempotent, acks=all, retries until delivery.timeout.ms) sends `n`
    // records "java:<i>:" keyed over the topic's partitions, pausing 1 ms every 100 records so
    // the test can kill and restart the broker meanwhile; every send must succeed.
    static void producePaced(String bootstrap, String topic, int n) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            System.out.println("started");
            System.out.flush();
            for (int i = 0; i < n; i++) {
                futures.add(producer.send(new ProducerRecord<>(topic, "key-" + (i % 1000), "java:" + i + ":")));
                if (i % 100 == 99) Thread.sleep(1);
            }
            producer.flush();
            for (Future<RecordMetadata> f : futures) f.get(120, TimeUnit.SECONDS);
        }
        System.out.println("produced " + n);
    }

    // AdminClient: describe cluster, create/list/describe topics, list offsets, delete topics.
    static void admin(String bootstrap, String topic) throws Exception {
        try (Admin a = admin(bootstrap)) {
            DescribeClusterResult cluster = a.describeCluster();
            String clusterId = cluster.clusterId().get(30, TimeUnit.SECONDS);
            Collection<Node> nodes = cluster.nodes().get(30, TimeUnit.SECONDS);
            Node controller = cluster.controller().get(30, TimeUnit.SECONDS);
            check(clusterId != null && !clusterId.isEmpty(), "cluster id");
            check(nodes.size() == 1, "one node: " + nodes);
            System.out.println("cluster " + clusterId + " nodes " + nodes + " controller " + controller);

            a.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get(30, TimeUnit.SECONDS);
            try {
                a.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("second create succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException,
                      "second create: " + e.getCause());
            }
            check(a.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic), "listed");
            TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
            check(d.partitions().size() == 4, "4 partitions: " + d);
            check(d.topicId() != null && !d.topicId().equals(Uuid.ZERO_UUID), "topic id");
            System.out.println("described " + d.name() + " id " + d.topicId() + " partitions " + d.partitions().size());

            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            long base = System.currentTimeMillis() - 100_000;
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, base + i * 1000L, "k", "v" + i)).get(30, TimeUnit.SECONDS);
                }
            }
            TopicPartition tp0 = new TopicPartition(topic, 0);
            long earliest = a.listOffsets(Map.of(tp0, OffsetSpec.earliest())).partitionResult(tp0).get().offset();
            long latest = a.listOffsets(Map.of(tp0, OffsetSpec.latest())).partitionResult(tp0).get().offset();
            ListOffsetsResult.ListOffsetsResultInfo max =
                a.listOffsets(Map.of(tp0, OffsetSpec.maxTimestamp())).partitionResult(tp0).get();
            long byTime = a.listOffsets(Map.of(tp0, OffsetSpec.forTimestamp(base + 4500))).partitionResult(tp0).get().offset();
            check(earliest == 0 && latest == 10, "earliest " + earliest + " latest " + latest);
            check(max.offset() == 9 && max.timestamp() == base + 9000, "max timestamp " + max);
            check(byTime == 5, "offset for timestamp " + byTime);
            System.out.println("list offsets: earliest 0, latest 10, max timestamp at 9, by time 5");

            a.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            long deadline = System.currentTimeMillis() + 30_000;
            while (a.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic)) {
                check(System.currentTimeMillis() < deadline, "topic still listed after delete");
                Thread.sleep(100);
            }
            System.out.println("deleted " + topic);

            // DeleteTopics by topic id (v6, KIP-516); an unknown id is UNKNOWN_TOPIC_ID.
            String byId = topic + "-by-id";
            Uuid id = a.createTopics(List.of(new NewTopic(byId, 1, (short) 1))).topicId(byId).get(30, TimeUnit.SECONDS);
            a.deleteTopics(TopicCollection.ofTopicIds(List.of(id))).all().get(30, TimeUnit.SECONDS);
            deadline = System.currentTimeMillis() + 30_000;
            while (a.listTopics().names().get(30, TimeUnit.SECONDS).contains(byId)) {
                check(System.currentTimeMillis() < deadline, "topic still listed after delete by id");
                Thread.sleep(100);
            }
            try {
                a.deleteTopics(TopicCollection.ofTopicIds(List.of(id))).all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("deleting a deleted topic id succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicIdException,
                      "second delete by id: " + e.getCause());
            }
            System.out.println("deleted " + byId + " by topic id " + id);
        }
    }

    // CreatePartitions, DescribeTopicPartitions in pages of one partition (the client follows
    // the cursor, KIP-966), DeleteRecords, ListOffsets earliest and DescribeLogDirs v4.
    static void partitions(String bootstrap, String topic) throws Exception {
        try (Admin a = admin(bootstrap)) {
            a.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            a.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all().get(30, TimeUnit.SECONDS);
            try {
                a.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("shrinking succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.InvalidPartitionsException,
                      "shrink: " + e.getCause());
            }
            TopicDescription d = a.describeTopics(List.of(topic),
                    new DescribeTopicsOptions().partitionSizeLimitPerResponse(1))
                .allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
            check(d.partitions().size() == 3, "3 partitions: " + d);
            check(d.partitions().get(2).partition() == 2 && d.partitions().get(2).leader().id() == 1, "partition 2: " + d);
            System.out.println("described " + d.partitions().size() + " partitions in pages");

            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>(topic, 2, "k", "v" + i)).get(30, TimeUnit.SECONDS);
                }
            }
            TopicPartition tp2 = new TopicPartition(topic, 2);
            long low = a.deleteRecords(Map.of(tp2, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp2)
                .get(30, TimeUnit.SECONDS).lowWatermark();
            long earliest = a.listOffsets(Map.of(tp2, OffsetSpec.earliest())).partitionResult(tp2).get().offset();
            check(low == 4 && earliest == 4, "low watermark " + low + " earliest " + earliest);
            System.out.println("deleted records below 4");

            Map<Integer, Map<String, LogDirDescription>> dirs =
                a.describeLogDirs(List.of(1)).allDescriptions().get(30, TimeUnit.SECONDS);
            LogDirDescription dir = dirs.get(1).values().iterator().next();
            ReplicaInfo info = dir.replicaInfos().get(tp2);
            check(dir.error() == null, "log dir error " + dir.error());
            check(info != null && info.size() > 0 && !info.isFuture(), "replica info " + info);
            check(dir.totalBytes().isPresent() && dir.usableBytes().getAsLong() > 0, "space " + dir);
            System.out.println("log dirs described: " + dirs.get(1).keySet());
        }
    }

    // OffsetForLeaderEpoch (KIP-320) as the consumer uses it: a seek that carries a leader epoch
    // is validated against the leader before any fetch. Inside epoch 0's range the consumer reads
    // from the seek; past its end offset (the log end) it is log truncation, and with
    // auto.offset.reset=none the consumer throws LogTruncationException naming the first
    // diverging offset, which only the broker's end-offset answer can supply.
    static void leaderEpoch(String bootstrap, String topic) throws Exception {
        try (Admin a = admin(bootstrap)) {
            a.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, 0, "k", "v" + i)).get(30, TimeUnit.SECONDS);
            }
        }
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, new OffsetAndMetadata(4, Optional.of(0), ""));
            ConsumerRecord<String, String> first = null;
            long deadline = System.currentTimeMillis() + 30_000;
            while (first == null && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    if (first == null) first = r;
                }
            }
            check(first != null && first.offset() == 4 && first.leaderEpoch().equals(Optional.of(0)),
                  "first record after a validated seek: " + first);
            System.out.println("seek to 4 in epoch 0 validated; read from " + first.offset());

            consumer.seek(tp, new OffsetAndMetadata(15, Optional.of(0), ""));
            LogTruncationException truncation = null;
            deadline = System.currentTimeMillis() + 30_000;
            while (truncation == null && System.currentTimeMillis() < deadline) {
                try {
                    check(consumer.poll(Duration.ofMillis(500)).isEmpty(), "records past the log end");
                } catch (LogTruncationException e) {
                    truncation = e;
                }
            }
            check(truncation != null, "no LogTruncationException for a seek past epoch 0's end");
            OffsetAndMetadata diverging = truncation.divergentOffsets().get(tp);
            check(diverging != null && diverging.offset() == 10 && diverging.leaderEpoch().equals(Optional.of(0)),
                  "divergent offset " + truncation.divergentOffsets());
            System.out.println("seek to 15 in epoch 0: truncation detected at " + diverging.offset());
        }
    }

    // AdminClient config APIs: incrementalAlterConfigs (SET, APPEND, DELETE) and describeConfigs
    // on a topic, then on the broker: values, sources, synonyms and a refused read-only key.
    static void configs(String bootstrap, String topic) throws Exception {
        try (Admin a = admin(bootstrap)) {
            a.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            ConfigResource t = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            a.incrementalAlterConfigs(Map.of(t, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                .all().get(30, TimeUnit.SECONDS);
            Config c = a.describeConfigs(List.of(t), new DescribeConfigsOptions().includeSynonyms(true))
                .all().get(30, TimeUnit.SECONDS).get(t);
            ConfigEntry retention = c.get("retention.ms");
            check(retention.value().equals("3600000")
                  && retention.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "retention.ms " + retention);
            check(retention.synonyms().size() >= 2, "synonyms of retention.ms " + retention.synonyms());
            check(Set.of(c.get("cleanup.policy").value().split(",")).equals(Set.of("delete", "compact")),
                  "cleanup.policy " + c.get("cleanup.policy"));
            ConfigEntry segment = c.get("segment.bytes");
            check(segment != null && segment.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "segment.bytes " + segment);
            a.incrementalAlterConfigs(Map.of(t, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE))))
                .all().get(30, TimeUnit.SECONDS);
            c = a.describeConfigs(List.of(t)).all().get(30, TimeUnit.SECONDS).get(t);
            check(c.get("retention.ms").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                  "retention.ms after DELETE " + c.get("retention.ms"));
            try {
                a.incrementalAlterConfigs(Map.of(t, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET))))
                    .all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("retention.ms=soon accepted");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.InvalidConfigurationException
                      || e.getCause() instanceof org.apache.kafka.common.errors.InvalidRequestException,
                      "bad value: " + e.getCause());
            }
            System.out.println("topic configs: SET, APPEND, DELETE, describe with synonyms, bad value refused");

            String node = a.describeCluster().nodes().get(30, TimeUnit.SECONDS).iterator().next().idString();
            ConfigResource b = new ConfigResource(ConfigResource.Type.BROKER, node);
            a.incrementalAlterConfigs(Map.of(b, List.of(
                new AlterConfigOp(new ConfigEntry("log.retention.ms", "7200000"), AlterConfigOp.OpType.SET))))
                .all().get(30, TimeUnit.SECONDS);
            Config bc = a.describeConfigs(List.of(b)).all().get(30, TimeUnit.SECONDS).get(b);
            ConfigEntry lr = bc.get("log.retention.ms");
            check(lr.value().equals("7200000") && lr.source() == ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG,
                  "log.retention.ms " + lr);
            c = a.describeConfigs(List.of(t)).all().get(30, TimeUnit.SECONDS).get(t);
            check(c.get("retention.ms").value().equals("7200000"), "topic follows the dynamic broker default: " + c.get("retention.ms"));
            System.out.println("broker configs: dynamic log.retention.ms set, described and followed by the topic");
        }
    }

    // Version negotiation with the Java client's own logic (NodeApiVersions, as NetworkClient
    // uses it): read our ApiVersions v0 response over a raw socket, then for every API the Java
    // client speaks and we advertise, the client must find a usable version (an empty overlap
    // throws UnsupportedVersionException, as the client itself would on first use).
    static void versions(String bootstrap) throws Exception {
        String[] hp = bootstrap.split(":");
        List<org.apache.kafka.common.message.ApiVersionsResponseData.ApiVersion> advertised = new ArrayList<>();
        try (java.net.Socket s = new java.net.Socket(hp[0], Integer.parseInt(hp[1]))) {
            java.io.DataOutputStream out = new java.io.DataOutputStream(s.getOutputStream());
            byte[] client = "java-compat".getBytes();
            out.writeInt(2 + 2 + 4 + 2 + client.length);
            out.writeShort(18);
            out.writeShort(0);
            out.writeInt(42);
            out.writeShort(client.length);
            out.write(client);
            out.flush();
            java.io.DataInputStream in = new java.io.DataInputStream(s.getInputStream());
            in.readInt();
            check(in.readInt() == 42, "correlation id");
            check(in.readShort() == 0, "ApiVersions error");
            int n = in.readInt();
            for (int i = 0; i < n; i++) {
                advertised.add(new org.apache.kafka.common.message.ApiVersionsResponseData.ApiVersion()
                    .setApiKey(in.readShort()).setMinVersion(in.readShort()).setMaxVersion(in.readShort()));
            }
        }
        org.apache.kafka.clients.NodeApiVersions node = org.apache.kafka.clients.NodeApiVersions.create(advertised);
        int usable = 0;
        for (var v : advertised) {
            check(org.apache.kafka.common.protocol.ApiKeys.hasId(v.apiKey()), "unknown api key " + v.apiKey());
            var key = org.apache.kafka.common.protocol.ApiKeys.forId(v.apiKey());
            if (!key.inScope(org.apache.kafka.common.message.ApiMessageType.ListenerType.BROKER)) {
                throw new AssertionError(key + " is advertised but is not a broker API");
            }
            short version = node.latestUsableVersion(key);
            System.out.println(key + " " + v.minVersion() + "-" + v.maxVersion() + " -> Java uses v" + version);
            usable++;
        }
        check(usable == advertised.size(), "every advertised API usable");
        System.out.println("negotiated " + usable + " APIs");
    }
}
