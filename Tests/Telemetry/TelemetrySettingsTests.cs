using Tests.Infrastructure;

namespace Tests.Telemetry;

public sealed class TelemetrySettingsTests
{
    [Theory]
    [InlineData("Telemetry:OtlpEndpoint", "collector:4317")]
    [InlineData("Telemetry:OtlpEndpoint", "ftp://collector")]
    [InlineData("Telemetry:OtlpProtocol", "udp")]
    public async Task ATelemetrySettingThatMakesNoSenseStopsTheStart(string key, string value)
    {
        using var database = new TempDatabase();
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            [key] = value,
        }));
        Assert.Contains(key, failure.Message);
    }
}
