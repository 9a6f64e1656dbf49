package lossless.probe;

import com.alibaba.nacos.api.NacosFactory;
import com.alibaba.nacos.api.PropertyKeyConst;
import com.alibaba.nacos.api.naming.NamingService;
import com.alibaba.nacos.api.naming.listener.NamingEvent;
import com.alibaba.nacos.api.naming.pojo.Instance;
import com.alibaba.nacos.common.utils.VersionUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpServer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A Java service's view of Nacos, for the interop tests: the Java nacos-client (what Spring Cloud
 * Alibaba and Dubbo run on) driven by JSON lines.
 *
 * <p>Usage: {@code java -cp ... lossless.probe.Probe <serverAddr>} (the servers' HTTP addresses,
 * comma-separated; the client finds gRPC at HTTP port + 1000). Commands, one JSON object a line on
 * stdin; every command may carry an {@code id}, echoed in its answer:
 *
 * <ul>
 *   <li>{@code {"cmd":"subscribe","service":"s"}}: an {@code instances} event with the list once
 *       subscribed ({@code "source":"subscribe"}), then one each time the client's listener fires
 *       ({@code "source":"listener"});
 *   <li>{@code {"cmd":"register","service":"s","ip":"127.0.0.1","port":N,"weight":1.0,
 *       "metadata":{...},"serve":true}}: registers a Java instance; with {@code serve}, first starts
 *       an HTTP server on ip:port answering 200 "java" (kept after a deregistration, so that calls
 *       still sent to it are seen; {@code "cmd":"unserve"} stops it);
 *   <li>{@code {"cmd":"deregister","service":"s","ip":...,"port":N}};
 *   <li>{@code {"cmd":"list","service":"s"}}: the list as the server holds it now (no cache);
 *   <li>{@code {"cmd":"select","service":"s","count":100000}}: picks per instance with
 *       {@code selectOneHealthyInstance}, the weighted random Java services use;
 *   <li>{@code {"cmd":"exit"}}.
 * </ul>
 *
 * <p>Events go to stdout, one JSON object a line, each with {@code event} and {@code at} (ms since
 * the epoch). Anything else the client prints goes to stderr.
 */
public final class Probe {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static PrintStream out;

  private final NamingService naming;
  private final Map<Integer, HttpServer> servers = new HashMap<>();

  private Probe(NamingService naming) {
    this.naming = naming;
  }

  public static void main(String[] args) throws Exception {
    // stdout carries the events only: whatever the client or its libraries print goes to stderr
    out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    System.setOut(System.err);
    if (args.length != 1) {
      System.err.println("usage: Probe <serverAddr>");
      System.exit(2);
    }
    Properties properties = new Properties();
    properties.setProperty(PropertyKeyConst.SERVER_ADDR, args[0]);
    NamingService naming = NacosFactory.createNamingService(properties);
    Probe probe = new Probe(naming);
    ObjectNode ready = event("ready");
    ready.put("serverAddr", args[0]);
    ready.put("clientVersion", clientVersion());
    ready.put("serverStatus", naming.getServerStatus());
    emit(ready);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String line; (line = in.readLine()) != null; ) {
      if (line.isBlank()) continue;
      JsonNode command = null;
      try {
        command = JSON.readTree(line);
        if (!probe.handle(command)) break;
      } catch (Exception e) {
        ObjectNode error = event("error");
        error.put("message", String.valueOf(e));
        if (command != null) {
          error.set("cmd", command.get("cmd"));
          error.set("id", command.get("id"));
        }
        emit(error);
      }
    }
    probe.close();
    emit(event("bye"));
    System.exit(0);
  }

  /** Handles one command; false on exit. */
  private boolean handle(JsonNode command) throws Exception {
    String cmd = command.path("cmd").asText();
    String service = command.path("service").asText();
    ObjectNode reply;
    switch (cmd) {
      case "subscribe" -> {
        naming.subscribe(
            service,
            e -> {
              if (e instanceof NamingEvent ne) emit(instances(ne.getServiceName(), ne.getInstances(), "listener"));
            });
        // the listener fires on changes only: the list the client holds once subscribed is sent here
        reply = instances(service, naming.getAllInstances(service, true), "subscribe");
      }
      case "register" -> {
        Instance instance = instanceOf(command);
        if (command.path("serve").asBoolean(false)) serve(instance.getIp(), instance.getPort());
        if (command.has("weight")) instance.setWeight(command.get("weight").asDouble());
        JsonNode metadata = command.path("metadata");
        for (Iterator<Map.Entry<String, JsonNode>> it = metadata.fields(); it.hasNext(); ) {
          Map.Entry<String, JsonNode> entry = it.next();
          instance.addMetadata(entry.getKey(), entry.getValue().asText());
        }
        naming.registerInstance(service, instance);
        reply = event("registered");
      }
      case "deregister" -> {
        naming.deregisterInstance(service, instanceOf(command));
        reply = event("deregistered");
      }
      case "unserve" -> {
        HttpServer server = servers.remove(command.path("port").asInt());
        if (server != null) server.stop(0);
        reply = event("unserved");
      }
      case "list" -> reply = instances(service, naming.getAllInstances(service, false), "list");
      case "select" -> {
        int count = command.path("count").asInt(100_000);
        Map<String, Integer> picks = new TreeMap<>();
        for (int i = 0; i < count; i++) {
          Instance one = naming.selectOneHealthyInstance(service);
          picks.merge(one.getIp() + ":" + one.getPort(), 1, Integer::sum);
        }
        reply = event("selected");
        reply.put("count", count);
        reply.set("picks", JSON.valueToTree(picks));
      }
      case "exit" -> {
        return false;
      }
      default -> throw new IllegalArgumentException("unknown command: " + cmd);
    }
    reply.put("cmd", cmd);
    reply.put("service", service);
    if (command.has("id")) reply.set("id", command.get("id"));
    emit(reply);
    return true;
  }

  private static Instance instanceOf(JsonNode command) {
    Instance instance = new Instance();
    instance.setIp(command.path("ip").asText("127.0.0.1"));
    instance.setPort(command.path("port").asInt());
    instance.setClusterName(command.path("cluster").asText("DEFAULT"));
    instance.setEphemeral(command.path("ephemeral").asBoolean(true));
    return instance;
  }

  /** A JDK HTTP server on ip:port answering 200 "java"; counts the requests it answered. */
  private void serve(String ip, int port) throws Exception {
    if (servers.containsKey(port)) return;
    HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getByName(ip), port), 64);
    AtomicLong served = new AtomicLong();
    server.createContext(
        "/",
        exchange -> {
          byte[] body = "java".getBytes(StandardCharsets.UTF_8);
          exchange.getResponseHeaders().set("x-served-by", "java:" + port + ":" + served.incrementAndGet());
          exchange.sendResponseHeaders(200, body.length);
          try (OutputStream os = exchange.getResponseBody()) {
            os.write(body);
          }
        });
    server.start();
    servers.put(port, server);
  }

  private static ObjectNode instances(String service, List<Instance> list, String source) {
    ObjectNode event = event("instances");
    event.put("service", service);
    event.put("source", source);
    ArrayNode array = event.putArray("instances");
    for (Instance i : list) {
      ObjectNode o = array.addObject();
      o.put("ip", i.getIp());
      o.put("port", i.getPort());
      o.put("weight", i.getWeight());
      o.put("healthy", i.isHealthy());
      o.put("enabled", i.isEnabled());
      o.put("ephemeral", i.isEphemeral());
      o.put("clusterName", i.getClusterName());
      o.put("serviceName", i.getServiceName());
      o.set("metadata", JSON.valueToTree(i.getMetadata()));
    }
    return event;
  }

  private static ObjectNode event(String name) {
    ObjectNode event = JSON.createObjectNode();
    event.put("event", name);
    event.put("at", System.currentTimeMillis());
    return event;
  }

  private static synchronized void emit(ObjectNode event) {
    out.println(event.toString());
  }

  private static String clientVersion() {
    return VersionUtils.version;
  }

  private void close() {
    for (HttpServer server : servers.values()) server.stop(0);
    try {
      naming.shutDown();
    } catch (Exception e) {
      System.err.println("shutdown: " + e);
    }
  }
}
