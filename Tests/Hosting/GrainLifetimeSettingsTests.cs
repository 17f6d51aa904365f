using Grains;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using WebSocketFrontend.Hosting;

namespace Tests.Hosting;

/// <summary>How long idle grains stay activated: the client record grain has an age of its own, checked at start.</summary>
public sealed class GrainLifetimeSettingsTests
{
    [Fact]
    public async Task AnIdleClientRecordGrainIsCollectedAfterTwoMinutesByDefaultAndOtherGrainsKeepOrleansAge()
    {
        await using var app = Build();
        var collection = app.Services.GetRequiredService<IOptions<GrainCollectionOptions>>().Value;

        Assert.Equal(TimeSpan.FromMinutes(2), collection.ClassSpecificCollectionAge[typeof(ClientGrain).FullName!]);
        Assert.False(collection.ClassSpecificCollectionAge.ContainsKey(typeof(ClientIdGrain).FullName!));
        Assert.True(collection.CollectionAge > TimeSpan.FromMinutes(2));
    }

    [Fact]
    public async Task TheClientRecordGrainsAgeIsTakenFromTheSetting()
    {
        await using var app = Build("--ClientStore:ClientGrainIdleAge=00:10:00");
        var collection = app.Services.GetRequiredService<IOptions<GrainCollectionOptions>>().Value;

        Assert.Equal(TimeSpan.FromMinutes(10), collection.ClassSpecificCollectionAge[typeof(ClientGrain).FullName!]);
    }

    [Theory]
    [InlineData("00:01:00")]
    [InlineData("00:00:00")]
    [InlineData("1.00:00:01")]
    public async Task AnAgeOrleansCannotHonourIsRefusedByItsKey(string age)
    {
        await using var app = Build($"--ClientStore:ClientGrainIdleAge={age}");

        var ex = Assert.ThrowsAny<OptionsValidationException>(() => app.Services.GetRequiredService<IOptions<ClientStoreOptions>>().Value);
        Assert.Contains("ClientGrainIdleAge", ex.Message, StringComparison.Ordinal);
    }

    private static Microsoft.AspNetCore.Builder.WebApplication Build(params string[] settings) =>
        GatewayApplication.Create([$"--Storage:SqlitePath={Path.Combine(Path.GetTempPath(), "unused-grain-lifetime-test.db")}", .. settings]);
}
