using Microsoft.Extensions.Configuration;
using WebSocketFrontend.Hosting;

namespace Tests.Hosting;

/// <summary>Where socket completions run on the runtime's I/O thread: the embedded default, or as set.</summary>
public sealed class SocketCompletionsTests
{
    private const string Postgres = "Host=127.0.0.1;Username=u;Password=p;Database=d";

    [Fact]
    public void TheEmbeddedDefaultWantsThem() => Assert.True(SocketCompletions.Wanted(Settings()));

    [Fact]
    public void AProcessThatTalksToADatabaseServerDoesNotByDefault()
    {
        Assert.False(SocketCompletions.Wanted(Settings(("Storage:Provider", "PostgreSql"), ("Storage:ConnectionString", Postgres))));
        Assert.False(SocketCompletions.Wanted(Settings(("Cluster:Clustering", "AdoNet"), ("Storage:Provider", "PostgreSql"), ("Storage:ConnectionString", Postgres))));
    }

    [Fact]
    public void TheSettingWinsOverTheDefaultEitherWay()
    {
        Assert.False(SocketCompletions.Wanted(Settings((SocketCompletions.Key, "false"))));
        Assert.True(SocketCompletions.Wanted(Settings((SocketCompletions.Key, "true"), ("Storage:Provider", "PostgreSql"), ("Storage:ConnectionString", Postgres))));
    }

    [Fact]
    public void AValueThatIsNotABooleanStopsTheStartNamingTheKey()
    {
        var refused = Assert.Throws<InvalidOperationException>(() => SocketCompletions.Wanted(Settings((SocketCompletions.Key, "sometimes"))));
        Assert.Contains(SocketCompletions.Key, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ApplyingSetsTheRuntimesSwitchOnlyWhenWantedAndNotSetAlready()
    {
        Assert.Equal(new Dictionary<string, string> { [SocketCompletions.Variable] = "1" }, Applied(Settings(), already: null));
        Assert.Empty(Applied(Settings((SocketCompletions.Key, "false")), already: null));
        Assert.Empty(Applied(Settings(), already: "0"));
    }

    private static Dictionary<string, string> Applied(IConfiguration settings, string? already)
    {
        var written = new Dictionary<string, string>();
        SocketCompletions.Apply(settings, name => name == SocketCompletions.Variable ? already : null, (name, value) => written[name] = value);
        return written;
    }

    private static IConfiguration Settings(params (string Key, string Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value))).Build();
}
