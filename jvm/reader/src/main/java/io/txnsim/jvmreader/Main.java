package io.txnsim.jvmreader;

import io.txnsim.jvmreader.Schemas.Kind;
import io.txnsim.jvmreader.Schemas.Registry;
import io.txnsim.jvmreader.Schemas.Writer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads a txnsim topic from the beginning to its end offsets (taken at start, read_committed)
 * with plain Apache kafka-clients and Apache Avro, decodes every value, and prints one JSON
 * line: {"records": N, "transactions": T, "labels": L, "checksum": "...", "per_card_ordered":
 * true, "framings": {"raw": a, "wire": b}}.
 */
public final class Main {

  static final String FINGERPRINT_HEADER = "txnsim.schema.fingerprint";
  static final String SCHEMA_HEADER = "txnsim.schema";

  static final int EXIT_USAGE = 1;
  static final int EXIT_DECODE = 2;
  static final int EXIT_EXPECT = 3;
  static final int EXIT_TIMEOUT = 4;

  static final String USAGE = String.join("\n",
      "usage: jvm-reader --bootstrap HOST:PORT --topic T[,T2...] [--schemas DIR] [--registry URL]",
      "                  [--expect N] [--timeout-s S] [--group G] [--framing auto|raw|wire]",
      "",
      "Reads every partition of the topic(s) from the beginning up to the end offsets taken at",
      "start (isolation.level=read_committed), decodes each value and prints one JSON line.",
      "  --schemas DIR   folder with transaction.avsc and fraud_label.avsc (default ./schemas)",
      "  --registry URL  Confluent-compatible Schema Registry for wire-format values",
      "  --expect N      exactly N records expected; reads on past the start's end offsets",
      "                  until N arrive (or the timeout), exit 3 if the count differs",
      "  --timeout-s S   give up after S seconds, exit 4 (default 120)",
      "  --group G       consumer group id (default: a unique one; nothing is committed)",
      "  --framing F     auto (default): Confluent wire format when the value starts with",
      "                  magic byte 0 and --registry is given (or no fingerprint header);",
      "                  otherwise raw Avro chosen by the txnsim.schema.fingerprint header",
      "Exit: 0 ok, 1 usage/setup error, 2 undecodable value, 3 --expect mismatch, 4 timeout.");

  /** A failure that ends the run with a message on stderr and an exit code. */
  static final class Failure extends Exception {
    final int code;

    Failure(int code, String message) {
      super(message);
      this.code = code;
    }
  }

  static final class Options {
    String bootstrap;
    final List<String> topics = new ArrayList<>();
    Path schemas = Path.of("schemas");
    String registry;
    Long expect;
    double timeoutS = 120;
    String group;
    String framing = "auto";

    static Options parse(String[] args) throws Failure {
      Options o = new Options();
      for (int i = 0; i < args.length; i++) {
        String arg = args[i];
        if (arg.equals("-h") || arg.equals("--help")) {
          System.out.println(USAGE);
          System.exit(0);
        }
        String name = arg;
        String value;
        int eq = arg.indexOf('=');
        if (arg.startsWith("--") && eq > 0) {
          name = arg.substring(0, eq);
          value = arg.substring(eq + 1);
        } else if (i + 1 < args.length) {
          value = args[++i];
        } else {
          throw new Failure(EXIT_USAGE, "missing value for " + arg + "\n" + USAGE);
        }
        try {
          switch (name) {
            case "--bootstrap", "--bootstrap-servers" -> o.bootstrap = value;
            case "--topic" -> Arrays.stream(value.split(",")).map(String::trim)
                .filter(t -> !t.isEmpty()).forEach(o.topics::add);
            case "--schemas" -> o.schemas = Path.of(value);
            case "--registry" -> o.registry = value;
            case "--expect" -> o.expect = Long.parseLong(value);
            case "--timeout-s" -> o.timeoutS = Double.parseDouble(value);
            case "--group" -> o.group = value;
            case "--framing" -> {
              if (!List.of("auto", "raw", "wire").contains(value)) {
                throw new Failure(EXIT_USAGE, "--framing must be auto, raw or wire, got " + value);
              }
              o.framing = value;
            }
            default -> throw new Failure(EXIT_USAGE, "unknown option " + name + "\n" + USAGE);
          }
        } catch (NumberFormatException e) {
          throw new Failure(EXIT_USAGE, "bad number for " + name + ": " + value);
        }
      }
      if (o.bootstrap == null || o.topics.isEmpty()) {
        throw new Failure(EXIT_USAGE, "--bootstrap and --topic are required\n" + USAGE);
      }
      if (!(o.timeoutS > 0)) {
        throw new Failure(EXIT_USAGE, "--timeout-s must be positive");
      }
      if (o.framing.equals("wire") && o.registry == null) {
        throw new Failure(EXIT_USAGE, "--framing wire needs --registry");
      }
      return o;
    }
  }

  // --- state ----------------------------------------------------------------------------

  private final Options opts;
  private final Map<String, Writer> known;
  private final Registry registry;
  private final long deadlineNanos;

  private long records;
  private long labels;
  private long raw;
  private long wire;
  private final List<byte[]> transactionIds = new ArrayList<>();
  /** Per card: the last transaction_id seen, and the partition it came from. */
  private final Map<String, String> lastByCard = new HashMap<>();
  private final Map<String, TopicPartition> partitionByCard = new HashMap<>();
  private long brokenLinks;
  private long splitCards;
  private long keyMismatches;
  private BinaryDecoder decoder;

  private Main(Options opts, Map<String, Writer> known) {
    this.opts = opts;
    this.known = known;
    this.registry = opts.registry == null ? null : new Registry(opts.registry);
    this.deadlineNanos = System.nanoTime() + (long) (opts.timeoutS * 1e9);
  }

  public static void main(String[] args) {
    int code;
    try {
      Options opts = Options.parse(args);
      Map<String, Writer> known;
      try {
        known = Schemas.load(opts.schemas);
      } catch (IOException | RuntimeException e) {
        throw new Failure(EXIT_USAGE, "cannot load the schemas from " + opts.schemas + ": " + e.getMessage());
      }
      code = new Main(opts, known).run();
    } catch (Failure f) {
      System.err.println("jvm-reader: error: " + f.getMessage());
      code = f.code;
    } catch (InterruptedException e) {
      System.err.println("jvm-reader: interrupted");
      code = EXIT_USAGE;
    }
    System.out.flush();
    System.exit(code);
  }

  private Duration remaining() {
    return Duration.ofNanos(Math.max(0, deadlineNanos - System.nanoTime()));
  }

  private boolean expired() {
    return System.nanoTime() - deadlineNanos >= 0;
  }

  private int run() throws Failure, InterruptedException {
    long started = System.nanoTime();
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, opts.bootstrap);
    props.put(ConsumerConfig.GROUP_ID_CONFIG,
        opts.group != null ? opts.group : "txnsim-jvm-reader-" + UUID.randomUUID());
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, "txnsim-jvm-reader");
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = discover(consumer);
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> end = endOffsets(consumer, partitions);
      Set<TopicPartition> pending = new LinkedHashSet<>(partitions);
      while (true) {
        pending.removeIf(tp -> position(consumer, tp) >= end.get(tp));
        if (pending.isEmpty()) {
          if (opts.expect == null || records >= opts.expect) {
            break;
          }
          // Fewer than --expect so far: follow the end offsets as the producer goes on.
          end.putAll(endOffsets(consumer, partitions));
          partitions.stream().filter(tp -> position(consumer, tp) < end.get(tp)).forEach(pending::add);
        }
        if (expired()) {
          throw timeout(consumer, pending, end);
        }
        ConsumerRecords<byte[], byte[]> batch =
            consumer.poll(Duration.ofMillis(Math.min(500, Math.max(1, remaining().toMillis()))));
        for (ConsumerRecord<byte[], byte[]> record : batch) {
          handle(record);
        }
      }
    } catch (TimeoutException e) {
      throw new Failure(EXIT_TIMEOUT, "timed out after " + fmt(opts.timeoutS) + " s talking to "
          + opts.bootstrap + " (" + e.getMessage() + "); consumed " + records + " records");
    }

    System.out.println(summaryJson());
    System.err.printf(Locale.ROOT, "jvm-reader: %d records (%d transactions, %d labels) from %s in %.1f s%n",
        records, records - labels, labels, String.join(",", opts.topics),
        (System.nanoTime() - started) / 1e9);
    if (keyMismatches > 0) {
      System.err.println("jvm-reader: warning: " + keyMismatches + " transaction(s) keyed by something other than their card_id");
    }
    if (opts.expect != null && records != opts.expect) {
      System.err.println("jvm-reader: error: expected " + opts.expect + " records, read " + records);
      return EXIT_EXPECT;
    }
    return 0;
  }

  private List<TopicPartition> discover(KafkaConsumer<byte[], byte[]> consumer) throws Failure, InterruptedException {
    List<TopicPartition> partitions = new ArrayList<>();
    for (String topic : opts.topics) {
      while (true) {
        List<PartitionInfo> infos;
        try {
          infos = consumer.partitionsFor(topic, remaining());
        } catch (TimeoutException e) {
          throw new Failure(EXIT_TIMEOUT, "timed out after " + fmt(opts.timeoutS)
              + " s getting the partitions of topic " + topic + " from " + opts.bootstrap
              + " (" + e.getMessage() + ")");
        }
        if (infos != null && !infos.isEmpty()) {
          infos.stream().map(p -> new TopicPartition(p.topic(), p.partition()))
              .sorted((a, b) -> Integer.compare(a.partition(), b.partition()))
              .forEach(partitions::add);
          break;
        }
        if (opts.expect == null) {
          throw new Failure(EXIT_USAGE, "topic " + topic + " does not exist on " + opts.bootstrap);
        }
        if (expired()) {
          throw new Failure(EXIT_TIMEOUT, "timed out after " + fmt(opts.timeoutS)
              + " s waiting for topic " + topic + " to exist on " + opts.bootstrap);
        }
        Thread.sleep(200);
      }
    }
    return partitions;
  }

  private Map<TopicPartition, Long> endOffsets(KafkaConsumer<byte[], byte[]> consumer, List<TopicPartition> tps) {
    return new HashMap<>(consumer.endOffsets(tps, remaining()));
  }

  private long position(KafkaConsumer<byte[], byte[]> consumer, TopicPartition tp) {
    return consumer.position(tp, remaining());
  }

  private Failure timeout(KafkaConsumer<byte[], byte[]> consumer, Set<TopicPartition> pending,
                          Map<TopicPartition, Long> end) {
    String behind = pending.stream().limit(10)
        .map(tp -> tp + " at " + consumer.position(tp, Duration.ofSeconds(1)) + "/" + end.get(tp))
        .collect(Collectors.joining(", "));
    String want = opts.expect == null ? "" : " of the " + opts.expect + " expected";
    return new Failure(EXIT_TIMEOUT, "timed out after " + fmt(opts.timeoutS) + " s: consumed "
        + records + " records" + want + "; "
        + (behind.isEmpty() ? "every partition is at its end offset" : "not done: " + behind));
  }

  // --- decoding -------------------------------------------------------------------------

  private void handle(ConsumerRecord<byte[], byte[]> r) throws Failure, InterruptedException {
    String where = r.topic() + "/" + r.partition() + "@" + r.offset();
    byte[] value = r.value();
    if (value == null) {
      throw new Failure(EXIT_DECODE, "record " + where + " has a null value");
    }
    String fingerprint = header(r, FINGERPRINT_HEADER);
    boolean magic = value.length >= 5 && value[0] == 0;
    boolean isWire = switch (opts.framing) {
      case "raw" -> false;
      case "wire" -> true;
      default -> magic && (registry != null || fingerprint == null);
    };
    Writer writer;
    int offset;
    if (isWire) {
      if (!magic) {
        throw new Failure(EXIT_DECODE, "record " + where + " is not in Confluent wire format ("
            + value.length + " bytes, first byte " + (value.length > 0 ? value[0] : "none") + ")");
      }
      if (registry == null) {
        throw new Failure(EXIT_DECODE, "record " + where + " has no " + FINGERPRINT_HEADER
            + " header and looks like Confluent wire format: pass --registry URL");
      }
      int id = ByteBuffer.wrap(value, 1, 4).getInt();
      try {
        writer = registry.writer(id);
      } catch (IOException | RuntimeException e) {
        throw new Failure(EXIT_DECODE, "record " + where + ": cannot get schema id " + id
            + " from the registry " + opts.registry + ": " + e);
      }
      if (fingerprint != null && !fingerprint.equalsIgnoreCase(writer.fingerprint())) {
        throw new Failure(EXIT_DECODE, "record " + where + ": registry schema id " + id
            + " has fingerprint " + writer.fingerprint() + " but the header says " + fingerprint);
      }
      offset = 5;
      wire++;
    } else {
      if (fingerprint == null) {
        throw new Failure(EXIT_DECODE, "record " + where + " has no " + FINGERPRINT_HEADER
            + " header and is not in Confluent wire format");
      }
      writer = known.get(fingerprint.toLowerCase(Locale.ROOT));
      if (writer == null) {
        throw new Failure(EXIT_DECODE, "record " + where + ": unknown writer schema fingerprint "
            + fingerprint + " (" + SCHEMA_HEADER + "=" + header(r, SCHEMA_HEADER) + "; known: "
            + known.values().stream().map(w -> w.name() + "=" + w.fingerprint())
                .collect(Collectors.joining(", ")) + ")");
      }
      offset = 0;
      raw++;
    }

    GenericRecord rec;
    try {
      decoder = DecoderFactory.get().binaryDecoder(value, offset, value.length - offset, decoder);
      rec = writer.reader().read(null, decoder);
      if (!decoder.isEnd()) {
        throw new IOException("bytes left over after the record");
      }
    } catch (IOException | RuntimeException e) {
      String hint = !isWire && magic
          ? " (it starts with magic byte 0: if it is Confluent wire format, pass --registry URL)" : "";
      throw new Failure(EXIT_DECODE, "record " + where + " (" + (value.length - offset) + "-byte "
          + writer.name() + " payload) does not decode: " + e + hint);
    }
    records++;
    if (writer.kind() == Kind.LABEL) {
      labels++;
      return;
    }
    String id = text(rec.get("transaction_id"));
    String card = text(rec.get("card_id"));
    String previous = text(rec.get("previous_transaction_id"));
    if (id == null || card == null) {
      throw new Failure(EXIT_DECODE, "record " + where + " has no transaction_id or card_id");
    }
    transactionIds.add(id.getBytes(StandardCharsets.UTF_8));
    if (r.key() == null || !card.equals(new String(r.key(), StandardCharsets.UTF_8))) {
      keyMismatches++;
    }
    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
    TopicPartition before = partitionByCard.putIfAbsent(card, tp);
    if (before != null && !before.equals(tp)) {
      if (splitCards++ < 5) {
        System.err.println("jvm-reader: card " + card + " is in " + before + " and " + tp + " (" + where + ")");
      }
    }
    String last = lastByCard.put(card, id);
    if (last != null && !last.equals(previous)) {
      if (brokenLinks++ < 5) {
        System.err.println("jvm-reader: card " + card + " at " + where + ": previous_transaction_id "
            + previous + ", but the last one read was " + last);
      }
    }
  }

  private static String header(ConsumerRecord<byte[], byte[]> r, String name) {
    Header h = r.headers().lastHeader(name);
    return h == null || h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8).trim();
  }

  private static String text(Object value) {
    return value == null ? null : value.toString();
  }

  // --- output ---------------------------------------------------------------------------

  /** SHA-256 of the sorted transaction ids (code-point order, as Python sorts), each + "\n". */
  private String checksum() {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    // Unsigned UTF-8 byte order is code-point order, which is Python's str order.
    transactionIds.sort(Arrays::compareUnsigned);
    for (byte[] id : transactionIds) {
      sha.update(id);
      sha.update((byte) '\n');
    }
    return HexFormat.of().formatHex(sha.digest());
  }

  private String summaryJson() {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("records", records);
    out.put("transactions", records - labels);
    out.put("labels", labels);
    out.put("checksum", "\"" + checksum() + "\"");
    out.put("per_card_ordered", brokenLinks == 0 && splitCards == 0);
    out.put("framings", "{\"raw\": " + raw + ", \"wire\": " + wire + "}");
    return out.entrySet().stream().map(e -> "\"" + e.getKey() + "\": " + e.getValue())
        .collect(Collectors.joining(", ", "{", "}"));
  }

  private static String fmt(double seconds) {
    return seconds == Math.rint(seconds) ? String.valueOf((long) seconds) : String.valueOf(seconds);
  }
}
