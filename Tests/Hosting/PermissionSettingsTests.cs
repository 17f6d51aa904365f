using Grains;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;

namespace Tests.Hosting;

/// <summary>The settings of who may do what: their defaults, and a wrong value refused by its key before the server serves.</summary>
public sealed class PermissionSettingsTests
{
    [Fact]
    public async Task TheDefaultsCloseClientSendsAndPresenceAndLeaveLifetimesAndExpiryOff()
    {
        await using var app = Build();
        var protocol = app.Services.GetRequiredService<IOptions<ProtocolOptions>>().Value;
        var store = app.Services.GetRequiredService<IOptions<ClientStoreOptions>>().Value;

        Assert.Equal(ClientSendPolicy.Contacts, protocol.ClientSend);
        Assert.False(protocol.ClientsMayListOnline);
        Assert.Equal((100, 900, 0.1), (store.PerSenderResponses, store.ClientSentResponses, store.ReservedForBackEnds));
        Assert.Null(store.TokenLifetime);
        Assert.Null(store.ExpireNeverLoggedInAfter);
    }

    [Theory]
    [InlineData("Protocol:ClientSend", "everyone")]
    [InlineData("ClientStore:MaxQueuedPerSender", "0")]
    [InlineData("ClientStore:ReservedForBackEnds", "1")]
    [InlineData("ClientStore:ReservedForBackEnds", "-0.1")]
    [InlineData("ClientStore:MaxContacts", "0")]
    [InlineData("ClientStore:TokenLifetime", "-00:00:01")]
    [InlineData("ClientStore:ExpireNeverLoggedInAfter", "00:00:00")]
    [InlineData("ClientStore:ExpirySweepInterval", "00:00:00")]
    [InlineData("ClientStore:ExpirySweepBatch", "0")]
    [InlineData("Api:PreviousAdminKey", "old-key")]
    public async Task AWrongValueIsRefusedByItsKey(string key, string value)
    {
        await using var app = Build($"--{key}={value}");

        var ex = Assert.ThrowsAny<Exception>(() =>
        {
            _ = app.Services.GetRequiredService<IOptions<ProtocolOptions>>().Value;
            _ = app.Services.GetRequiredService<IOptions<ClientStoreOptions>>().Value;
            _ = app.Services.GetRequiredService<IOptions<ApiOptions>>().Value;
        });
        Assert.Contains(key.Split(':')[1], ex.Message + ex.InnerException?.Message, StringComparison.Ordinal);
    }

    private static Microsoft.AspNetCore.Builder.WebApplication Build(params string[] settings) =>
        GatewayApplication.Create([$"--Storage:SqlitePath={Path.Combine(Path.GetTempPath(), "unused-settings-test.db")}", .. settings]);
}
