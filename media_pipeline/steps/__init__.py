"""The pipeline's steps, one module each; they move assets only through media_pipeline.workflow and
write versions only through media_pipeline.versions. The actors (media_pipeline.actors) call them."""
