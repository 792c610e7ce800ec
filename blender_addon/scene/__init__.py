"""Scene building blocks: property groups (`props`), version-proof keyframing (`keyframes`), the face rig
(`rig.build_rig`) and retargeting onto other characters (`retarget.retarget`). The operators and the batch CLI
call these functions; nothing here reads the UI."""
