// The minimal Roomz-shaped chat server on Node's own Socket.IO server, for
// benchmarks/server_load.py: `node server.js PORT`, with JWT_SECRET_KEY in the environment.
//
// It speaks the part of docs/protocol.md the load uses, and nothing more: a connection
// signs in with the `session_token` cookie (an HS256 JWT, verified as ours verifies it),
// joins its user's room and gets `authenticated`; a `message` is acknowledged and emitted
// to that room. No validation beyond the content being a string, no escaping, no presence,
// no limits: the cost of Socket.IO itself, which a team would pick instead of Roomz.
"use strict";

const http = require("node:http");
const { randomUUID } = require("node:crypto");
const jwt = require("jsonwebtoken");
const { Server } = require("socket.io");

const port = Number(process.argv[2]);
const secret = process.env.JWT_SECRET_KEY;
if (!port || !secret) {
  console.error("usage: JWT_SECRET_KEY=... node server.js PORT");
  process.exit(2);
}

function sessionToken(cookieHeader) {
  for (const pair of (cookieHeader || "").split(";")) {
    const [name, ...value] = pair.trim().split("=");
    if (name === "session_token") return value.join("=");
  }
  return null;
}

const httpServer = http.createServer();
const io = new Server(httpServer);

io.use((socket, next) => {
  try {
    const claims = jwt.verify(sessionToken(socket.request.headers.cookie), secret,
                              { algorithms: ["HS256"] });
    if (typeof claims.email !== "string" || claims.sub !== `user:${claims.email}`) {
      throw new Error("session invalid");
    }
    socket.data.email = claims.email;
    next();
  } catch (err) {
    next(new Error(`Not authenticated: ${err.message}`));
  }
});

io.on("connection", (socket) => {
  const email = socket.data.email;
  const channel = `user:${email}`;
  const user = { id: channel, email, display_name: null };
  const connectionId = randomUUID();
  socket.join(channel);
  socket.emit("authenticated", { user, channel, server_time: new Date().toISOString(),
                                 connection_id: connectionId });
  socket.on("message", (data, ack) => {
    if (typeof ack !== "function") return;
    if (typeof data?.content !== "string") {
      ack({ error: "Missing or invalid 'content' field", code: 400 });
      return;
    }
    const id = randomUUID();
    const timestamp = new Date().toISOString();
    io.to(channel).emit("message", { id, user, content: data.content, timestamp,
                                     connection_id: connectionId });
    ack({ status: "ok", message_id: id, timestamp });
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
process.on("SIGTERM", () => process.exit(0));
