"""Pure renderers: subtitles and text (export), analysis-tool formats (qda), links and
citations."""
