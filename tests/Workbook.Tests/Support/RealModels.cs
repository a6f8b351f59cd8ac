using Workbook.Checkpoints;
using Workbook.Hub;

namespace Workbook.Tests.Support;

/// <summary>
/// The paper's real checkpoints for opt-in tests (<c>Category=RealWeights</c>): <c>WORKBOOK_MODELS</c> names a hub cache
/// holding them; it is opened offline, and a missing model skips the test with the reason.
/// </summary>
public static class RealModels
{
    public static LoadedModel LoadOrSkip(string alias)
    {
        string? cache = Environment.GetEnvironmentVariable("WORKBOOK_MODELS");
        Skip.If(string.IsNullOrEmpty(cache), "WORKBOOK_MODELS is not set: point it at a hub cache holding the real checkpoints to run these tests.");
        try
        {
            return ModelLoader.LoadWithTokenizer(alias, new LoadOptions { Hub = new HubOptions { CacheDir = cache!, Offline = true } });
        }
        catch (OfflineFileMissingException e)
        {
            throw new SkipException($"{alias} is not in WORKBOOK_MODELS: {e.Message}");
        }
    }
}
