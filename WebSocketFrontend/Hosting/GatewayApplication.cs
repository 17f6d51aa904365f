namespace WebSocketFrontend.Hosting;

/// <summary>Builds the whole gateway; the program and the tests start it the same way.</summary>
public static class GatewayApplication
{
    /// <summary>The configured application, ready to run; <paramref name="args"/> are configuration overrides.</summary>
    public static WebApplication Create(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);

        // Orleans' placement pipeline logs every grain call at Information through Polly.
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.AddGatewayCluster();
        builder.AddGatewayProtocol();

        var app = builder.Build();
        app.MapGateway();
        return app;
    }
}
