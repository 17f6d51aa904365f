using WebSocketFrontend.Hosting;

GatewayApplication.Create(args).Run();
