using WebSocketFrontend.Hosting;

var app = GatewayApplication.Create(args);

// Before anything opens a socket: the runtime reads its switch once, at the first socket operation.
SocketCompletions.Apply(app.Configuration);
app.Run();
