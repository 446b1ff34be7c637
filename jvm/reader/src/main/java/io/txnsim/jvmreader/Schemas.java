package io.txnsim.jvmreader;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;

/** The writer schemas a txnsim topic may carry: the three known ones, and a registry's. */
final class Schemas {

  /** Fields of transaction.avsc that the public schema drops (simulator/schema.py LABEL_FIELDS). */
  static final List<String> LABEL_FIELDS =
      List.of("is_fraud", "fraud_scenario", "fraud_case_id", "label_available_at");

  static final String TRANSACTION = "io.txnsim.Transaction";
  static final String FRAUD_LABEL = "io.txnsim.FraudLabel";

  enum Kind {
    TRANSACTION,
    LABEL
  }

  /** A writer schema with its fingerprint, what its records are, and a reader for them. */
  record Writer(String name, Schema schema, String fingerprint, Kind kind,
                GenericDatumReader<GenericRecord> reader) {

    static Writer of(String name, Schema schema) {
      Kind kind;
      if (schema.getType() != Schema.Type.RECORD) {
        throw new IllegalArgumentException("schema " + name + " is a " + schema.getType() + ", not a record");
      } else if (FRAUD_LABEL.equals(schema.getFullName())) {
        kind = Kind.LABEL;
      } else if (TRANSACTION.equals(schema.getFullName())) {
        kind = Kind.TRANSACTION;
      } else {
        throw new IllegalArgumentException("schema " + name + " is " + schema.getFullName()
            + ", neither " + TRANSACTION + " nor " + FRAUD_LABEL);
      }
      return new Writer(name, schema, fingerprintHex(schema), kind, new GenericDatumReader<>(schema));
    }
  }

  /**
   * CRC-64-AVRO (Rabin) fingerprint of the Parsing Canonical Form as 16 lower-case hex digits
   * of its 8 bytes in little-endian order (Avro's byte[] form, as in single-object encoding):
   * what fastavro's {@code fingerprint(..., "CRC-64-AVRO")} returns and what the
   * {@code txnsim.schema.fingerprint} header carries as ASCII text. It is NOT
   * {@code %016x} of {@link SchemaNormalization#parsingFingerprint64}, which is byte-reversed.
   */
  static String fingerprintHex(Schema schema) {
    try {
      return HexFormat.of().formatHex(SchemaNormalization.parsingFingerprint("CRC-64-AVRO", schema));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** transaction.avsc less LABEL_FIELDS, same record name (simulator.schema.public_transaction_schema). */
  static Schema publicOf(Schema full) {
    Set<String> names = new java.util.HashSet<>();
    full.getFields().forEach(f -> names.add(f.name()));
    List<String> missing = LABEL_FIELDS.stream().filter(f -> !names.contains(f)).toList();
    if (!missing.isEmpty()) {
      throw new IllegalArgumentException("transaction schema lacks label field(s) " + missing);
    }
    List<Schema.Field> kept = new ArrayList<>();
    for (Schema.Field field : full.getFields()) {
      if (!LABEL_FIELDS.contains(field.name())) {
        kept.add(new Schema.Field(field, field.schema()));
      }
    }
    Schema pub = Schema.createRecord(full.getName(), full.getDoc(), full.getNamespace(), full.isError(), kept);
    full.getObjectProps().forEach(pub::addProp);
    return pub;
  }

  /** The known schemas by fingerprint, from transaction.avsc and fraud_label.avsc in {@code dir}. */
  static Map<String, Writer> load(Path dir) throws IOException {
    Schema full = parse(dir.resolve("transaction.avsc"));
    Schema label = parse(dir.resolve("fraud_label.avsc"));
    Map<String, Writer> known = new LinkedHashMap<>();
    for (Writer w : List.of(Writer.of("transaction", full), Writer.of("transaction_public", publicOf(full)),
        Writer.of("fraud_label", label))) {
      known.put(w.fingerprint(), w);
    }
    return known;
  }

  private static Schema parse(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IOException("schema file " + file + " not found (set --schemas DIR)");
    }
    return new Schema.Parser().parse(Files.readString(file));
  }

  /** A Confluent-compatible Schema Registry, read through GET /schemas/ids/{id}; cached by id. */
  static final class Registry {
    private final String base;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final ObjectMapper json = new ObjectMapper();
    private final Map<Integer, Writer> byId = new HashMap<>();

    Registry(String base) {
      this.base = base.replaceAll("/+$", "");
    }

    Writer writer(int id) throws IOException, InterruptedException {
      Writer cached = byId.get(id);
      if (cached != null) {
        return cached;
      }
      URI uri = URI.create(base + "/schemas/ids/" + id);
      HttpRequest request = HttpRequest.newBuilder(uri)
          .timeout(Duration.ofSeconds(30))
          .header("Accept", "application/vnd.schemaregistry.v1+json, application/json")
          .GET()
          .build();
      HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
      if (response.statusCode() != 200) {
        throw new IOException("registry " + uri + " answered HTTP " + response.statusCode() + ": "
            + abbreviate(response.body()));
      }
      JsonNode body = json.readTree(response.body());
      JsonNode type = body.get("schemaType");
      if (type != null && !type.isNull() && !"AVRO".equals(type.asText())) {
        throw new IOException("registry schema id " + id + " is of type " + type.asText() + ", not AVRO");
      }
      JsonNode text = body.get("schema");
      if (text == null || !text.isTextual()) {
        throw new IOException("registry " + uri + " answered without a \"schema\" string: "
            + abbreviate(response.body()));
      }
      Writer writer = Writer.of("registry id " + id, new Schema.Parser().parse(text.asText()));
      byId.put(id, writer);
      return writer;
    }

    private static String abbreviate(String s) {
      return s.length() <= 200 ? s : s.substring(0, 200) + "...";
    }
  }

  private Schemas() {}
}
